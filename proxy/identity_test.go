package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"golang.org/x/net/http2"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/mtls"
	"github.com/kvgate/kvgate/mtls/spiffetest"
)

const (
	proxyID    = "spiffe://example.org/ns/kvgate/sa/proxy"
	allowedID  = "spiffe://example.org/ns/voice/sa/gateway"
	strangerID = "spiffe://example.org/ns/other/sa/intruder"
)

// idEnv is a trust domain with a fake SPIRE agent serving the proxy's SVID.
type idEnv struct {
	ca  *spiffetest.CA
	api *spiffetest.WorkloadAPI
}

func newIDEnv(t testing.TB) *idEnv {
	ca := spiffetest.NewCA("example.org")
	return &idEnv{ca: ca, api: spiffetest.StartWorkloadAPI(t, ca.SVID(proxyID), ca.Bundle())}
}

// identityYAML is the top of a config using env's agent; listeners and the
// rest follow.
func (e *idEnv) identityYAML() string {
	return fmt.Sprintf(`admin: {address: "127.0.0.1:0"}
accessLog: {path: "off"}
identity: {workloadAPI: %q, startupTimeout: 20s}
`, e.api.Addr())
}

// logBuffer collects log output for assertions; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runProxy builds and starts kvgate from a whole YAML document.
func runProxy(t testing.TB, yaml string, out io.Writer) *Proxy {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	return startConfig(t, cfg, out)
}

func buildProxy(yaml string, out io.Writer) (*Proxy, error) {
	if out == nil {
		out = io.Discard
	}
	cfg, err := config.Parse([]byte(yaml), "test.yaml")
	if err != nil {
		return nil, fmt.Errorf("config: %w\n%s", err, yaml)
	}
	return New(cfg, slog.New(slog.NewTextHandler(out, nil)))
}

// spiffeTLS is a client config presenting svid (nil: no certificate) and
// requiring the server to be the proxy.
func spiffeTLS(t testing.TB, svid *x509svid.SVID, bundles ...*x509bundle.Bundle) *tls.Config {
	t.Helper()
	if svid == nil { // no client certificate: verify the server by hand
		return &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
			if got := mtls.PeerID(&cs); got != proxyID {
				return fmt.Errorf("server is %q", got)
			}
			return nil
		}}
	}
	c, err := mtls.ClientTLS(&config.UpstreamTLS{SPIFFEID: proxyID}, spiffetest.NewSource(svid, bundles...))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// h1Client speaks HTTPS/1.1, one connection per request when fresh is set.
func h1Client(conf *tls.Config, fresh bool) *http.Client {
	conf = conf.Clone()
	conf.NextProtos = []string{"http/1.1"}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf, DisableKeepAlives: fresh,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
}

func h2Client(conf *tls.Config) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{TLSClientConfig: conf.Clone()}}
}

// echoXFCC is a backend answering with the x-forwarded-client-cert values it got.
func echoXFCC(t *testing.T) string {
	return backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.Join(r.Header.Values("X-Forwarded-Client-Cert"), " | "))
	}))
}

// mtlsListener is a listener serving the SVID and asking for client certs.
func mtlsListener(name, clientAuth string, extra ...string) string {
	return fmt.Sprintf(`  - name: %s
    address: "127.0.0.1:0"
    protocols: [http1, http2%s]
    tls: {spiffe: true, clientAuth: %s}
`, name, strings.Join(extra, ""), clientAuth)
}

func get(c *http.Client, url string, hdr ...string) (int, string, *http.Response, error) {
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b), resp, err
}

func TestIdentityStartupWaitsForSVID(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	api := spiffetest.StartWorkloadAPI(t, nil, ca.Bundle())
	api.Deny(true)
	env := &idEnv{ca: ca, api: api}
	yaml := env.identityYAML() + "listeners:\n" + mtlsListener("m", "none") + simple(echoXFCC(t))
	type result struct {
		p   *Proxy
		err error
	}
	done := make(chan result, 1)
	go func() { p, err := buildProxy(yaml, nil); done <- result{p, err} }()
	for i := 0; api.Calls() < 2 && i < 2000; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if api.Calls() < 2 {
		t.Fatalf("proxy asked the agent %d times; want retries while denied", api.Calls())
	}
	select {
	case r := <-done:
		t.Fatalf("New returned while the workload was not registered: %v", r.err)
	default:
	}
	api.SetSVID(ca.SVID(proxyID))
	api.Deny(false)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	p := r.p
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	code, _, _, err := get(h1Client(spiffeTLS(t, nil), true), "https://"+p.Listener("m").Addr().String()+"/")
	if err != nil || code != 200 {
		t.Fatalf("after start-up: %d %v", code, err)
	}
}

func TestIdentityStartupTimeout(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	api := spiffetest.StartWorkloadAPI(t, nil, ca.Bundle())
	api.Deny(true)
	yaml := fmt.Sprintf("accessLog: {path: \"off\"}\nidentity: {workloadAPI: %q, startupTimeout: 200ms}\nlisteners:\n%s%s",
		api.Addr(), mtlsListener("m", "none"), simple("127.0.0.1:1"))
	_, err := buildProxy(yaml, nil)
	if err == nil || !strings.Contains(err.Error(), "identity") {
		t.Fatalf("want an identity start-up error, got %v", err)
	}
}

// servedSerial handshakes afresh and returns the serial of the proxy's certificate.
func servedSerial(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	code, _, resp, err := get(c, url)
	if err != nil || code != 200 {
		t.Fatalf("request: %d %v", code, err)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.String()
}

// waitServed polls fresh handshakes until the proxy serves svid.
func waitServed(t *testing.T, c *http.Client, url string, svid *x509svid.SVID) {
	t.Helper()
	want := svid.Certificates[0].SerialNumber.String()
	for i := 0; i < 1000; i++ {
		if servedSerial(t, c, url) == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("proxy never served the rotated SVID %s", want)
}

// traffic runs requests on fresh connections from n goroutines until stopped.
type traffic struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startTraffic(c *http.Client, url string, n int) *traffic {
	tr := &traffic{stop: make(chan struct{})}
	for range n {
		tr.wg.Go(func() {
			for {
				select {
				case <-tr.stop:
					return
				default:
				}
				code, _, _, err := get(c, url)
				if err != nil || code != 200 {
					tr.failed.Add(1)
					tr.firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %v", code, err))
					continue
				}
				tr.ok.Add(1)
			}
		})
	}
	return tr
}

// waitMore waits until n more requests have succeeded (or one failed).
func (tr *traffic) waitMore(t *testing.T, n int64) {
	t.Helper()
	want := tr.ok.Load() + n
	for i := 0; tr.ok.Load() < want && tr.failed.Load() == 0 && i < 2000; i++ {
		time.Sleep(5 * time.Millisecond)
	}
}

func (tr *traffic) end(t *testing.T) {
	t.Helper()
	close(tr.stop)
	tr.wg.Wait()
	if tr.failed.Load() != 0 || tr.ok.Load() == 0 {
		t.Fatalf("traffic: %d ok, %d failed (first: %v)", tr.ok.Load(), tr.failed.Load(), tr.firstErr.Load())
	}
	t.Logf("traffic: %d requests, none failed", tr.ok.Load())
}

func TestSVIDRotationUnderTraffic(t *testing.T) {
	env := newIDEnv(t)
	p := runProxy(t, env.identityYAML()+"listeners:\n"+mtlsListener("m", "require")+simple(echoXFCC(t)), nil)
	url := "https://" + p.Listener("m").Addr().String() + "/"
	client := h1Client(spiffeTLS(t, env.ca.SVID(allowedID), env.ca.Bundle()), true)
	tr := startTraffic(client, url, 3)
	for range 5 {
		next := env.ca.SVID(proxyID)
		env.api.SetSVID(next)
		waitServed(t, client, url, next)
		tr.waitMore(t, 20)
	}
	tr.end(t)
}

func TestAgentRestartKeepsServing(t *testing.T) {
	env := newIDEnv(t)
	p := runProxy(t, env.identityYAML()+"listeners:\n"+mtlsListener("m", "require")+simple(echoXFCC(t)), nil)
	url := "https://" + p.Listener("m").Addr().String() + "/"
	client := h1Client(spiffeTLS(t, env.ca.SVID(allowedID), env.ca.Bundle()), true)
	tr := startTraffic(client, url, 2)
	before := servedSerial(t, client, url)
	env.api.Stop()
	for range 20 { // the agent is gone: the last SVID keeps serving
		if got := servedSerial(t, client, url); got != before {
			t.Fatalf("served %s while the agent was down; want the last SVID %s", got, before)
		}
	}
	next := env.ca.SVID(proxyID)
	env.api.SetSVID(next)
	if err := env.api.Start(); err != nil {
		t.Fatal(err)
	}
	waitServed(t, client, url, next)
	tr.end(t)
}

func TestTrustBundleChange(t *testing.T) {
	env := newIDEnv(t)
	p := runProxy(t, env.identityYAML()+"listeners:\n"+mtlsListener("m", "require")+simple(echoXFCC(t)), nil)
	url := "https://" + p.Listener("m").Addr().String() + "/"
	ca2 := spiffetest.NewCA("example.org") // a new CA for the same trust domain
	fed := spiffetest.NewCA("partner.org") // a federated trust domain
	newcomer := h1Client(spiffeTLS(t, ca2.SVID(allowedID), env.ca.Bundle()), true)
	partner := h1Client(spiffeTLS(t, fed.SVID("spiffe://partner.org/ns/p/sa/caller"), env.ca.Bundle()), true)
	for _, c := range []*http.Client{newcomer, partner} {
		if _, _, _, err := get(c, url); err == nil {
			t.Fatal("a client from an untrusted CA was let in")
		}
	}
	both := x509bundle.FromX509Authorities(env.ca.TD, []*x509.Certificate{env.ca.Cert, ca2.Cert})
	env.api.SetBundles(both, fed.Bundle())
	for _, c := range []*http.Client{newcomer, partner} {
		var err error
		for i := 0; i < 1000; i++ {
			if _, _, _, err = get(c, url); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("client still refused after the bundle change: %v", err)
		}
	}
}
