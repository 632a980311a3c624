package mtls

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
)

// CertFiles is a certificate and key read from PEM files and re-read when they change.
// A pair that fails to load is logged and ignored: the last good pair keeps serving.
// Safe for concurrent use; a reload is visible to the next handshake.
type CertFiles struct {
	certFile, keyFile string
	log               *slog.Logger
	cur               atomic.Pointer[tls.Certificate]
	watch             *dirWatcher
	reloads           atomic.Int64 // reload attempts after the first load, for tests
}

// NewCertFiles loads certFile and keyFile and watches their directories. log nil means
// slog.Default(). The first load must succeed. Call Close to stop watching.
func NewCertFiles(certFile, keyFile string, log *slog.Logger) (*CertFiles, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("mtls: tls needs both certFile and keyFile")
	}
	if log == nil {
		log = slog.Default()
	}
	cf := &CertFiles{certFile: certFile, keyFile: keyFile, log: log}
	if err := cf.load(); err != nil {
		return nil, err
	}
	w, err := watchDirs([]string{certFile, keyFile}, cf.reload, log)
	if err != nil {
		return nil, err
	}
	cf.watch = w
	return cf, nil
}

func (cf *CertFiles) load() error {
	c, err := tls.LoadX509KeyPair(cf.certFile, cf.keyFile)
	if err != nil {
		return fmt.Errorf("mtls: load certFile %s and keyFile %s: %w (are both PEM, and does the key match the certificate?)", cf.certFile, cf.keyFile, err)
	}
	cf.cur.Store(&c)
	return nil
}

func (cf *CertFiles) reload() {
	defer cf.reloads.Add(1)
	if err := cf.load(); err != nil {
		cf.log.Error("mtls: keeping the previous certificate", "err", err)
		return
	}
	cf.log.Info("mtls: certificate reloaded", "certFile", cf.certFile)
}

// Certificate returns the current certificate. Never nil.
func (cf *CertFiles) Certificate() *tls.Certificate { return cf.cur.Load() }

// GetCertificate is for tls.Config.GetCertificate.
func (cf *CertFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return cf.cur.Load(), nil
}

// GetClientCertificate is for tls.Config.GetClientCertificate.
func (cf *CertFiles) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return cf.cur.Load(), nil
}

// Close stops watching the files. The last certificate stays readable.
func (cf *CertFiles) Close() error { return cf.watch.Close() }
