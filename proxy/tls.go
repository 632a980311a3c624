package proxy

import (
	"crypto/tls"
	"fmt"
	"log/slog"

	"github.com/kvgate/kvgate/config"
)

// plainServerTLS loads a certificate pair for a listener: TLS 1.2 minimum,
// forward-secret AEAD suites only.
func plainServerTLS(t *config.ListenerTLS, log *slog.Logger) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load tls certFile/keyFile: %w (check both paths and that the key matches the certificate)", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: modernSuites,
		Certificates: []tls.Certificate{cert},
	}, nil
}

// modernSuites are the TLS 1.2 suites allowed: ECDHE key exchange with AEAD.
// TLS 1.3 suites are not configurable and are all AEAD.
var modernSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}
