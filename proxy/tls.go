package proxy

import (
	"fmt"
	"slices"

	"github.com/kvgate/kvgate/mtls"
)

// listenerTLS builds l's TLS config with package mtls: the certificate comes
// from the workload SVID (tls.spiffe) or from certificate files that are
// re-read when they change (kept in l.certFiles, closed at shutdown); client
// certificates are asked for as tls.clientAuth says; l.peer extracts the
// verified caller's SPIFFE ID. NextProtos are set here, by the proxy.
func (p *Proxy) listenerTLS(l *Listener) error {
	t := l.cfg.TLS
	if t.SPIFFE && p.ident == nil {
		return fmt.Errorf("proxy: tls.spiffe is set but no identity is open: add an identity section")
	}
	if !t.SPIFFE {
		cf, err := mtls.NewCertFiles(t.CertFile, t.KeyFile, p.log)
		if err != nil {
			return fmt.Errorf("proxy: tls certFile/keyFile: %w (check both paths and that the key matches the certificate)", err)
		}
		l.certFiles = cf
	}
	conf, err := mtls.ServerTLS(t, p.identitySource(), l.certFiles)
	if err != nil {
		l.closeCertFiles()
		return err
	}
	conf.NextProtos = tcpProtos(l.cfg.Protocols)
	l.tlsConf = conf
	l.peer = mtls.PeerID
	return nil
}

// tcpProtos are the ALPN names offered on the TCP socket, preferred first.
func tcpProtos(protocols []string) []string {
	var protos []string
	if slices.Contains(protocols, "http2") {
		protos = append(protos, "h2")
	}
	if slices.Contains(protocols, "http1") {
		protos = append(protos, "http/1.1")
	}
	return protos
}

func (l *Listener) closeCertFiles() {
	if l.certFiles != nil {
		_ = l.certFiles.Close()
	}
}
