package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"go.uber.org/goleak"
	"golang.org/x/net/http2"

	"github.com/kvgate/kvgate/config"
)

func TestMain(m *testing.M) {
	poisonReleased = true // a string outliving its request reads as '#'s (exchange.go)
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		// zmq4 v0.17's PUB socket never stops its writer goroutine (Close
		// does not close the writer); only the simulators' KV event
		// publishers make one, kvgate itself uses SUB and DEALER sockets.
		goleak.IgnoreAnyFunction("github.com/go-zeromq/zmq4.(*pubMWriter).run"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.init.0.func1"),
		// fasthttp's own cleaners sleep out their period before exiting.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
		// fasthttp's default dialer keeps one process-wide address cache cleaner.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*TCPDialer).tcpAddrsClean"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

// backend starts a plain HTTP/1.1 server on loopback.
func backend(t *testing.T, h http.Handler) string {
	t.Helper()
	return serveLoopback(t, &http.Server{Handler: h, ErrorLog: discardLog})
}

// serveLoopback serves s on a loopback port until the test ends and
// returns its address.
func serveLoopback(t *testing.T, s *http.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if s.TLSConfig != nil {
		go func() { _ = s.ServeTLS(ln, "", "") }()
	} else {
		go func() { _ = s.Serve(ln) }()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		s.Close()
	})
	return ln.Addr().String()
}

// engine is one way a client reaches kvgate.
type engine struct {
	name     string
	listener string // "plain" or "tls"
	scheme   string
	client   func() *http.Client
	proto    int
}

var testCertFiles struct{ cert, key string }

func engines() []engine {
	plain := func() *http.Client {
		return &http.Client{Transport: &http.Transport{DisableCompression: true, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	}
	h2c := func() *http.Client {
		return &http.Client{Transport: &http2.Transport{AllowHTTP: true, DisableCompression: true,
			DialTLSContext: func(ctx context.Context, n, a string, _ *tls.Config) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, n, a)
			}}}
	}
	tlsH1 := func() *http.Client {
		return &http.Client{Transport: &http.Transport{DisableCompression: true,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}},
			TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	}
	tlsH2 := func() *http.Client {
		return &http.Client{Transport: &http2.Transport{DisableCompression: true,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	}
	return []engine{
		{"http1", "plain", "http", plain, 1},
		{"h2c", "plain", "http", h2c, 2},
		{"https-h1", "tls", "https", tlsH1, 1},
		{"https-h2", "tls", "https", tlsH2, 2},
	}
}

// startProxy runs kvgate with a plain and a TLS listener in front of the
// given pools. extra is YAML appended at top level (routes, limits...).
func startProxy(t *testing.T, yaml string) *Proxy {
	t.Helper()
	return startConfig(t, proxyConfig(t, yaml, false), nil)
}

// startProxyH3 is startProxy with HTTP/3 on the TLS listener as well.
func startProxyH3(t *testing.T, yaml string) *Proxy {
	t.Helper()
	return startConfig(t, proxyConfig(t, yaml, true), nil)
}

// proxyConfig is the config of startProxy (h3: HTTP/3 on the TLS listener too).
func proxyConfig(t *testing.T, yaml string, h3 bool) *config.Config {
	t.Helper()
	certs(t)
	protos := "http1, http2"
	if h3 {
		protos += ", http3"
	}
	full := fmt.Sprintf(`
admin: {address: "127.0.0.1:0"}
accessLog: {path: "off"}
listeners:
  - {name: plain, address: "127.0.0.1:0", protocols: [http1, http2]}
  - name: tls
    address: "127.0.0.1:0"
    protocols: [%s]
    tls: {certFile: %q, keyFile: %q}
%s`, protos, testCertFiles.cert, testCertFiles.key, yaml)
	cfg, err := config.Parse([]byte(full), "test.yaml")
	if err != nil {
		t.Fatalf("config: %v\n%s", err, full)
	}
	return cfg
}

// withH3 is engines() plus an HTTP/3 client (quic-go) for the TLS
// listener of a proxy from startProxyH3.
func withH3(t *testing.T) []engine {
	h3 := func() *http.Client {
		tr := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
		t.Cleanup(func() { _ = tr.Close() })
		return &http.Client{Transport: tr}
	}
	return append(engines(), engine{"h3", "tls", "https", h3, 3})
}

// startConfig builds and starts kvgate from a parsed config, logging to
// out (nil: nowhere), and drains it when the test ends.
func startConfig(t testing.TB, cfg *config.Config, out io.Writer) *Proxy {
	t.Helper()
	if out == nil {
		out = io.Discard
	}
	p, err := New(cfg, slog.New(slog.NewTextHandler(out, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	return p
}

func (e engine) url(p *Proxy, path string) string {
	return e.scheme + "://" + p.Listener(e.listener).Addr().String() + path
}

// simple is the config for one route to one pool.
func simple(addr string, more ...string) string {
	return fmt.Sprintf(`routes:
  - {name: r, backends: [{pool: b}]}
pools:
  - {name: b, endpoints: [%q]}
%s`, addr, strings.Join(more, "\n"))
}

func certs(t *testing.T) {
	if testCertFiles.cert != "" {
		return
	}
	dir, err := os.MkdirTemp("", "kvgate-proxy-test")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	testCertFiles.cert = filepath.Join(dir, "tls.crt")
	testCertFiles.key = filepath.Join(dir, "tls.key")
	_ = os.WriteFile(testCertFiles.cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(testCertFiles.key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

// plainClient speaks HTTP/1.1 to the plaintext listener.
func plainClient() *http.Client { return engines()[0].client() }

// eachEngine runs fn once per engine as a subtest.
func eachEngine(t *testing.T, fn func(t *testing.T, e engine)) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) { fn(t, e) })
	}
}

func mustGet(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, c, req)
}
