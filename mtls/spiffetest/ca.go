// Package spiffetest is test support for code that uses SPIFFE identities: an in-process
// certificate authority that issues X.509 SVIDs and plain certificates, helpers that write them
// in the layouts kvgate reads, and a fake SPIFFE Workload API server on a unix socket.
//
// It is for tests only: keys are generated in process, nothing is persisted, and nothing here
// must be imported by production code.
package spiffetest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

var serial atomic.Int64

// CA is a self-signed root for one trust domain. Its certificate carries the trust domain's
// SPIFFE ID as a URI SAN, as SPIRE's CA certificates do. Safe for concurrent use.
type CA struct {
	TD   spiffeid.TrustDomain
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA makes a root for trust domain td (e.g. "example.org"). It panics on a bad name:
// callers are tests with constant names.
func NewCA(td string) *CA {
	d := spiffeid.RequireTrustDomainFromString(td)
	key := newKey()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{Organization: []string{"spiffetest"}, CommonName: td + " root"},
		URIs:                  []*url.URL{d.ID().URL()},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	return &CA{TD: d, Cert: sign(tmpl, tmpl, key.Public(), key), Key: key}
}

// Bundle returns the trust bundle holding this CA alone.
func (ca *CA) Bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(ca.TD, []*x509.Certificate{ca.Cert})
}

// SVID issues an X.509 SVID for id (a full spiffe:// URI in ca's trust domain), valid for an hour.
func (ca *CA) SVID(id string) *x509svid.SVID {
	sid := spiffeid.RequireFromString(id)
	key := newKey()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		URIs:         []*url.URL{sid.URL()},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	leaf := sign(tmpl, ca.Cert, key.Public(), ca.Key)
	return &x509svid.SVID{ID: sid, Certificates: []*x509.Certificate{leaf}, PrivateKey: key}
}

// Leaf issues a plain (non-SPIFFE) server and client certificate for the given DNS names,
// plus 127.0.0.1, valid for an hour.
func (ca *CA) Leaf(dnsNames ...string) tls.Certificate {
	key := newKey()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: "spiffetest leaf"},
		DNSNames:     dnsNames,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	leaf := sign(tmpl, ca.Cert, key.Public(), ca.Key)
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
}

// Pool returns a CertPool holding this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// CertPEM encodes the CA certificate.
func (ca *CA) CertPEM() []byte { return CertsPEM(ca.Cert) }

// CertsPEM encodes certificates as consecutive CERTIFICATE blocks.
func CertsPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// KeyPEM encodes a private key as PKCS#8.
func KeyPEM(key crypto.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(fmt.Sprintf("spiffetest: marshal key: %v", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// WriteKeyPair writes a certificate chain and its key as PEM files, replacing them atomically
// (write to a temporary name, then rename), as a careful writer does.
func WriteKeyPair(certFile, keyFile string, c tls.Certificate) error {
	var chain []byte
	for _, der := range c.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	if err := WriteAtomic(certFile, chain); err != nil {
		return err
	}
	return WriteAtomic(keyFile, KeyPEM(c.PrivateKey))
}

// WriteSVIDDir writes the layout of `spire-agent api fetch x509 -write DIR`: svid.0.pem (chain),
// svid.0.key, bundle.0.pem, and federated_bundle.0.N.pem for each federated bundle.
func WriteSVIDDir(dir string, svid *x509svid.SVID, bundle *x509bundle.Bundle, federated ...*x509bundle.Bundle) error {
	files := map[string][]byte{
		"svid.0.pem":   CertsPEM(svid.Certificates...),
		"svid.0.key":   KeyPEM(svid.PrivateKey),
		"bundle.0.pem": CertsPEM(bundle.X509Authorities()...),
	}
	for i, b := range federated {
		files[fmt.Sprintf("federated_bundle.0.%d.pem", i)] = CertsPEM(b.X509Authorities()...)
	}
	for name, data := range files {
		if err := WriteAtomic(filepath.Join(dir, name), data); err != nil {
			return err
		}
	}
	return nil
}

// WriteAtomic writes data to a temporary file beside path and renames it over path.
func WriteAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("spiffetest: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("spiffetest: rename %s: %w", tmp, err)
	}
	return nil
}

func newKey() *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(fmt.Sprintf("spiffetest: generate key: %v", err))
	}
	return key
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		panic(fmt.Sprintf("spiffetest: create certificate: %v", err))
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(fmt.Sprintf("spiffetest: parse certificate: %v", err))
	}
	return c
}
