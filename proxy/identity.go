package proxy

import (
	"context"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/mtls"
)

// The workload identity: opened once when the Proxy is built (the first SVID
// must arrive within identity.startupTimeout), read per handshake by listener
// and upstream TLS configs, closed at shutdown. A reload that changes the
// identity section is not applied to the running process; restart for it.

// openIdentity opens cfg.Identity (nil: none) and waits for the first SVID.
func (p *Proxy) openIdentity(cfg *config.Config) error {
	if cfg.Identity == nil {
		return nil
	}
	id, err := mtls.OpenIdentity(context.Background(), cfg.Identity, p.log)
	if err != nil {
		return fmt.Errorf("proxy: identity: %w (is the SPIRE agent up and this workload registered? raise identity.startupTimeout to wait longer)", err)
	}
	p.ident = id
	p.ups.ids = id
	if s, err := id.GetX509SVID(); err == nil {
		p.log.Info("workload identity ready", "spiffeID", s.ID.String(), "expires", s.Certificates[0].NotAfter)
	}
	return nil
}

// identitySource is the open identity, or nil (an untyped nil, so that
// package mtls sees "no identity").
func (p *Proxy) identitySource() mtls.IdentitySource {
	if p.ident == nil {
		return nil
	}
	return p.ident
}

// closeIdentity closes the identity and every listener's certificate
// watcher. Only the first call has an effect.
func (p *Proxy) closeIdentity() {
	p.closeID.Do(func() {
		for _, l := range p.listeners {
			l.closeCertFiles()
		}
		if p.ident != nil {
			_ = p.ident.Close()
		}
	})
}

// selfIDCache remembers the SPIFFE ID of the last SVID seen, so that the
// request path turns an SVID into a string once per rotation, not per request.
type selfIDCache struct {
	svid *x509svid.SVID
	id   string
}

// selfID is our own SPIFFE ID, "" without an identity.
func (p *Proxy) selfID() string {
	if p.ident == nil {
		return ""
	}
	s, err := p.ident.GetX509SVID()
	if err != nil {
		return ""
	}
	if c := p.selfIDs.Load(); c != nil && c.svid == s {
		return c.id
	}
	id := s.ID.String()
	p.selfIDs.Store(&selfIDCache{svid: s, id: id})
	return id
}

// xfccHeader is the field that carries the caller's verified identity upstream.
const xfccHeader = "X-Forwarded-Client-Cert"

// writeClientCert sets x-forwarded-client-cert from the verified peer. A
// client-supplied copy has already been dropped by copyRequestHeaders unless
// the listener trusts it, in which case this element follows it, as Envoy's
// APPEND_FORWARD does. Anonymous callers get no element.
func writeClientCert(x *Exchange, dst headerSink) {
	if x.peerID == "" {
		return
	}
	dst.Add(xfccHeader, mtls.ForwardedClientCert(x.peerID, x.proxy.selfID()))
}
