package mtls

import (
	"crypto/tls"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// PeerID returns the SPIFFE ID (spiffe://...) of the peer's leaf certificate, or "" when
// there is no peer certificate or it carries no valid SPIFFE ID. The configs built by
// ServerTLS and ClientTLS only complete handshakes whose peer certificate was verified.
// cs nil is allowed.
func PeerID(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return ""
	}
	for _, u := range cs.PeerCertificates[0].URIs {
		if u.Scheme != "spiffe" {
			continue
		}
		if id, err := spiffeid.FromURI(u); err == nil {
			return id.String()
		}
	}
	return ""
}

// ForwardedClientCert renders Envoy's x-forwarded-client-cert value for a request from peerID
// received by byID: `By=spiffe://...;URI=spiffe://...`. An empty part is left out; both empty
// gives "". Values holding , ; = or " are quoted as Envoy does.
func ForwardedClientCert(peerID string, byID string) string {
	var b strings.Builder
	if byID != "" {
		b.WriteString("By=")
		b.WriteString(xfccValue(byID))
	}
	if peerID != "" {
		if b.Len() > 0 {
			b.WriteByte(';')
		}
		b.WriteString("URI=")
		b.WriteString(xfccValue(peerID))
	}
	return b.String()
}

func xfccValue(v string) string {
	if !strings.ContainsAny(v, ",;=\"") {
		return v
	}
	return `"` + strings.ReplaceAll(v, `"`, `\"`) + `"`
}
