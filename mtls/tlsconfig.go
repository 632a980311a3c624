package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/kvgate/kvgate/config"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// cipherSuites are the TLS 1.2 suites offered: ECDHE key exchange with an AEAD only.
// TLS 1.3 suites are not configurable in Go and are all AEAD.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

func baseConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: cipherSuites}
}

// ServerTLS builds the downstream (listener) config. The caller sets NextProtos (h2, http/1.1,
// h3) on the result.
//
// The certificate served comes from ids when l.SPIFFE is set, otherwise from files (which must
// then be non-nil; the caller owns and closes it). Either way it is fetched per handshake, so
// rotation applies to new connections.
//
// l.ClientAuth: "" or none asks for no client certificate; request verifies one if given and
// accepts clients without one (PeerID is then ""); require refuses clients without a valid one.
// Client certificates are verified against l.ClientCAFile when set (read once, here), else as
// SPIFFE SVIDs against the trust bundles of ids (any ID in a trusted domain: authorization
// decides who). SPIFFE verification runs in VerifyConnection, so it also runs on resumed sessions.
func ServerTLS(l *config.ListenerTLS, ids IdentitySource, files *CertFiles) (*tls.Config, error) {
	if l == nil {
		return nil, errors.New("mtls: listener has no tls section")
	}
	cfg := baseConfig()
	switch {
	case l.SPIFFE && ids == nil:
		return nil, errors.New("mtls: listener tls.spiffe is set but no identity is configured; add an identity section (workloadAPI or files)")
	case l.SPIFFE:
		cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return svidCertificate(ids) }
	case files != nil:
		cfg.GetCertificate = files.GetCertificate
	default:
		return nil, errors.New("mtls: listener tls needs certFile and keyFile, or spiffe: true")
	}
	if err := setClientAuth(cfg, l, ids); err != nil {
		return nil, err
	}
	return cfg, nil
}

func setClientAuth(cfg *tls.Config, l *config.ListenerTLS, ids IdentitySource) error {
	mode := strings.ToLower(l.ClientAuth)
	required := mode == "require"
	switch mode {
	case "", "none":
		cfg.ClientAuth = tls.NoClientCert
		return nil
	case "request", "require":
	default:
		return fmt.Errorf("mtls: tls.clientAuth %q is not none, request or require", l.ClientAuth)
	}
	if l.ClientCAFile != "" {
		pool, err := loadPool(l.ClientCAFile)
		if err != nil {
			return fmt.Errorf("mtls: tls.clientCAFile: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if required {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
		return nil
	}
	if ids == nil {
		return fmt.Errorf("mtls: tls.clientAuth %s needs tls.clientCAFile or an identity section to verify clients against", mode)
	}
	cfg.ClientAuth = tls.RequestClientCert
	if required {
		cfg.ClientAuth = tls.RequireAnyClientCert
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			if required {
				return errors.New("mtls: client sent no certificate and clientAuth is require")
			}
			return nil
		}
		if _, _, err := x509svid.Verify(cs.PeerCertificates, ids); err != nil {
			return fmt.Errorf("mtls: client certificate rejected: %w", err)
		}
		return nil
	}
	return nil
}

// ClientTLS builds the upstream (dialing) config for a pool. The caller sets NextProtos.
//
// With t.SPIFFEID (exact match) or t.TrustDomain (any ID in it), the server must present an
// SVID that verifies against the bundles of ids, and our SVID from ids is presented as the
// client certificate; both are read per handshake. Otherwise it is plain TLS: t.CAFile (default:
// system roots), t.ServerName, and t.CertFile/t.KeyFile as a client certificate, all read once,
// here. t nil means no TLS and returns (nil, nil).
func ClientTLS(t *config.UpstreamTLS, ids IdentitySource) (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	cfg := baseConfig()
	if t.SPIFFEID != "" || t.TrustDomain != "" {
		return spiffeClient(cfg, t, ids)
	}
	cfg.ServerName = t.ServerName
	cfg.InsecureSkipVerify = t.InsecureSkipVerify
	if t.CAFile != "" {
		pool, err := loadPool(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mtls: tls.caFile: %w", err)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		c, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mtls: upstream tls.certFile %q and keyFile %q: %w (set both, PEM, matching)", t.CertFile, t.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}

func spiffeClient(cfg *tls.Config, t *config.UpstreamTLS, ids IdentitySource) (*tls.Config, error) {
	if ids == nil {
		return nil, errors.New("mtls: upstream tls.spiffeID/trustDomain needs an identity section (workloadAPI or files)")
	}
	if t.SPIFFEID != "" && t.TrustDomain != "" {
		return nil, errors.New("mtls: upstream tls: set spiffeID or trustDomain, not both")
	}
	authorize, err := serverAuthorizer(t)
	if err != nil {
		return nil, err
	}
	// Go's own verification knows nothing of SPIFFE; VerifyConnection does it, on every
	// handshake including resumed ones.
	cfg.InsecureSkipVerify = true
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return svidCertificate(ids) }
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		id, _, err := x509svid.Verify(cs.PeerCertificates, ids)
		if err != nil {
			return fmt.Errorf("mtls: upstream certificate is not a trusted SVID: %w", err)
		}
		return authorize(id)
	}
	return cfg, nil
}

func serverAuthorizer(t *config.UpstreamTLS) (func(spiffeid.ID) error, error) {
	if t.SPIFFEID != "" {
		want, err := spiffeid.FromString(t.SPIFFEID)
		if err != nil {
			return nil, fmt.Errorf("mtls: upstream tls.spiffeID %q: %w (write it like spiffe://example.org/ns/NS/sa/SA)", t.SPIFFEID, err)
		}
		return func(got spiffeid.ID) error {
			if got != want {
				return fmt.Errorf("mtls: upstream identity mismatch: expected %s, presented %s", want, got)
			}
			return nil
		}, nil
	}
	td, err := spiffeid.TrustDomainFromString(t.TrustDomain)
	if err != nil {
		return nil, fmt.Errorf("mtls: upstream tls.trustDomain %q: %w (write it like example.org)", t.TrustDomain, err)
	}
	return func(got spiffeid.ID) error {
		if !got.MemberOf(td) {
			return fmt.Errorf("mtls: upstream identity mismatch: expected an ID in trust domain %s, presented %s", td, got)
		}
		return nil
	}, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}
