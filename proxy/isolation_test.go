package proxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/kvgate/kvgate/config"
)

// The isolation matrix: every client engine × every upstream protocol, each
// cell sending many requests whose header values, paths, queries and bodies
// are unique (and of varying length, so that HPACK's dynamic table evicts
// and reuses entries). The upstream asserts that each request carries
// exactly its own values and no other request's; the client asserts the
// same of each response. This is the test that would have caught the
// HTTP/2 upstream pool sending one request's Authorization with another
// (header strings aliasing reused buffers kept in the HPACK table) and the
// encoder's "id <= evictCount" panic that followed.

// isoUpstream is one upstream protocol under test.
type isoUpstream struct {
	name     string
	protocol string // pools[].protocol
	start    func(t *testing.T, h http.Handler) string
	tls      bool
}

func isoUpstreams() []isoUpstream {
	return []isoUpstream{
		{"up-http1", "http1", backend, false},
		{"up-h2c", "h2c", h2cBackend, false},
		{"up-h2", "h2", h2TLSBackend, true},
	}
}

// h2TLSBackend serves HTTP/2 over TLS (and HTTP/1.1) with the test
// certificate, which the pool trusts through tls.caFile.
func h2TLSBackend(t *testing.T, h http.Handler) string {
	t.Helper()
	certs(t)
	cert, err := tls.LoadX509KeyPair(testCertFiles.cert, testCertFiles.key)
	if err != nil {
		t.Fatal(err)
	}
	return serveLoopback(t, &http.Server{Handler: h, ErrorLog: discardLog,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}})
}

// isoRequest is what request i of a cell carries; every value embeds the
// request's token, and lengths vary with i.
type isoRequest struct {
	token, auth, custom, path, query, body string
}

func newIsoRequest(cell string, i int) isoRequest {
	tok := cell + "-" + strconv.Itoa(i)
	pad := strings.Repeat("x", i%37)
	return isoRequest{
		token:  tok,
		auth:   "Bearer secret-" + tok + pad,
		custom: "v-" + tok + strings.Repeat("y", (i*7)%53),
		path:   "/iso/" + tok + "/" + pad,
		query:  "q=" + tok + "&pad=" + pad,
		body:   `{"model":"m-` + tok + `","prompt":"` + pad + `"}`,
	}
}

// isoChecker is the upstream handler: it parses the token out of the path
// and checks every other part of the request against it.
type isoChecker struct {
	cell   string
	seen   atomic.Int64
	mu     sync.Mutex
	errors []string
}

func (c *isoChecker) fail(format string, args ...any) {
	c.mu.Lock()
	if len(c.errors) < 10 {
		c.errors = append(c.errors, fmt.Sprintf(format, args...))
	}
	c.mu.Unlock()
}

func (c *isoChecker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.seen.Add(1)
	rest, ok := strings.CutPrefix(r.URL.Path, "/iso/")
	tok, _, _ := strings.Cut(rest, "/")
	i, err := strconv.Atoi(strings.TrimPrefix(tok, c.cell+"-"))
	if !ok || err != nil {
		c.fail("upstream got path %q", r.URL.Path)
		w.WriteHeader(400)
		return
	}
	want := newIsoRequest(c.cell, i)
	body, _ := io.ReadAll(r.Body)
	checks := []struct{ what, got, want string }{
		{"path", r.URL.Path, want.path},
		{"query", r.URL.RawQuery, want.query},
		{"Authorization", strings.Join(r.Header.Values("Authorization"), "|"), want.auth},
		{"X-Iso", strings.Join(r.Header.Values("X-Iso"), "|"), want.custom},
		{"X-Request-Id", strings.Join(r.Header.Values("X-Request-Id"), "|"), "rid-" + want.token},
		{"body", string(body), want.body},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			c.fail("request %s: upstream got %s %q, want %q", want.token, ch.what, ch.got, ch.want)
		}
	}
	// No value may mention another request's token.
	for name, vals := range r.Header {
		for _, v := range vals {
			if strings.Contains(v, c.cell+"-") && !strings.Contains(v, want.token) {
				c.fail("request %s: upstream got %s %q from another request", want.token, name, v)
			}
		}
	}
	w.Header().Set("X-Iso-Echo", want.custom)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, want.body)
}

// isoProxyConfig is kvgate with a plain and a TLS listener (HTTP/3 too) in
// front of one pool of the given protocol. routeExtra is appended to the
// route, poolsExtra to the pools.
func isoProxyConfig(t *testing.T, up isoUpstream, addr, routeExtra, poolsExtra string) *config.Config {
	t.Helper()
	certs(t)
	poolTLS := ""
	if up.tls {
		poolTLS = fmt.Sprintf(", tls: {caFile: %q, serverName: localhost}", testCertFiles.cert)
	}
	return proxyConfig(t, fmt.Sprintf(`routes:
  - name: r
    backends: [{pool: b}]
%s
pools:
  - {name: b, endpoints: [%q], protocol: %s%s}
%s`, routeExtra, addr, up.protocol, poolTLS, poolsExtra), true)
}

// isoRequests is how many requests each cell sends: enough that HPACK's
// 4 KiB table wraps many times (the panic came after 100-250).
func isoRequests() int {
	if testing.Short() {
		return 300
	}
	return 1500
}

// sendIso sends n requests of cell over c with a few workers, checking each
// response carries its own values.
func sendIso(t *testing.T, c *http.Client, base, cell string, n int) {
	t.Helper()
	const workers = 4
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				q := newIsoRequest(cell, i)
				req, _ := http.NewRequest("POST", base+q.path+"?"+q.query, strings.NewReader(q.body))
				req.Header.Set("Authorization", q.auth)
				req.Header.Set("X-Iso", q.custom)
				req.Header.Set("X-Request-Id", "rid-"+q.token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := c.Do(req)
				if err != nil {
					errs <- fmt.Sprintf("request %s: %v", q.token, err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case err != nil:
					errs <- fmt.Sprintf("request %s: reading body: %v", q.token, err)
				case resp.StatusCode != 200:
					errs <- fmt.Sprintf("request %s: status %d: %s", q.token, resp.StatusCode, body)
				case string(body) != q.body:
					errs <- fmt.Sprintf("request %s: response body %q, want %q", q.token, body, q.body)
				case resp.Header.Get("X-Iso-Echo") != q.custom:
					errs <- fmt.Sprintf("request %s: response X-Iso-Echo %q, want %q", q.token, resp.Header.Get("X-Iso-Echo"), q.custom)
				case resp.Header.Get("X-Request-Id") != "rid-"+q.token:
					errs <- fmt.Sprintf("request %s: response X-Request-Id %q", q.token, resp.Header.Get("X-Request-Id"))
				default:
					continue
				}
				return
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestIsolationMatrix(t *testing.T) {
	n := isoRequests()
	for _, up := range isoUpstreams() {
		t.Run(up.name, func(t *testing.T) {
			for _, e := range withH3(t) {
				t.Run(e.name, func(t *testing.T) {
					cell := up.name + "." + e.name
					chk := &isoChecker{cell: cell}
					addr := up.start(t, chk)
					p := startConfig(t, isoProxyConfig(t, up, addr, "", ""), nil)
					base := e.scheme + "://" + p.Listener(e.listener).Addr().String()
					sendIso(t, e.client(), base, cell, n)
					for _, msg := range chk.errors {
						t.Error(msg)
					}
					if got := chk.seen.Load(); got != int64(n) {
						t.Errorf("upstream saw %d requests, want %d", got, n)
					}
				})
			}
		})
	}
}

// Through retries and mirrors: the first endpoint refuses connections so
// every request is retried on the second, and every request is mirrored to
// a third pool; both the retried request and the mirror must carry exactly
// their own values.
func TestIsolationRetryAndMirror(t *testing.T) {
	n := isoRequests() / 3
	for _, up := range isoUpstreams() {
		t.Run(up.name, func(t *testing.T) {
			cell := up.name + ".retry"
			chk := &isoChecker{cell: cell}
			mirror := &isoChecker{cell: cell}
			addr := up.start(t, chk)
			maddr := up.start(t, mirror)
			poolTLS := ""
			if up.tls {
				poolTLS = fmt.Sprintf(", tls: {caFile: %q, serverName: localhost}", testCertFiles.cert)
			}
			cfg := isoProxyConfig(t, up, addr,
				"    filters: [{requestMirror: {pool: shadow}}]\n    retry: {attempts: 3, budgetPercent: 100, backoff: 1ms}",
				fmt.Sprintf("  - {name: shadow, endpoints: [%q], protocol: %s%s}", maddr, up.protocol, poolTLS))
			cfg.Pools[0].Endpoints = []string{"127.0.0.1:1", addr} // the first refuses, as in testConnectRefused
			cfg.Pools[0].Balancer = "round-robin"
			p := startConfig(t, cfg, nil)
			for _, e := range withH3(t)[:2] {
				sendIso(t, e.client(), e.scheme+"://"+p.Listener(e.listener).Addr().String(), cell, n)
			}
			for _, msg := range append(chk.errors, mirror.errors...) {
				t.Error(msg)
			}
			if got := chk.seen.Load(); got != int64(2*n) {
				t.Errorf("upstream saw %d requests, want %d", got, 2*n)
			}
			deadline := time.Now().Add(5 * time.Second)
			for mirror.seen.Load() < int64(2*n) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			// Mirrors beyond the in-flight bound are dropped by design; most arrive.
			if got := mirror.seen.Load(); got < int64(n) {
				t.Errorf("mirror saw %d requests, want about %d", got, 2*n)
			}
		})
	}
}

// Spans outlive their request (a batching exporter sends them later), so
// every string a span keeps must be its own. Each request here carries a
// unique path, request id and tracestate; after all of them ran, every
// span must still say what its own request said.
func TestIsolationSpans(t *testing.T) {
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	exp := tracetest.NewInMemoryExporter()
	p, _, _ := startTelemetryProxy(t, simple(addr), memTracing(exp))
	n := isoRequests() / 3
	for _, e := range engines() {
		c := e.client()
		for i := range n {
			tok := e.name + "-" + strconv.Itoa(i) + strings.Repeat("z", i%29)
			req, _ := http.NewRequest("GET", e.url(p, "/span/"+tok), nil)
			req.Header.Set("X-Request-Id", "rid-"+tok)
			req.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
			req.Header.Set("Tracestate", "k="+strings.ReplaceAll(tok, "-", "_"))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	spans := serverSpans(waitSpans(t, exp, 2*n*len(engines()))) // a server and a client span each
	if len(spans) != n*len(engines()) {
		t.Fatalf("%d server spans, want %d", len(spans), n*len(engines()))
	}
	bad := 0
	for _, s := range spans {
		a := attrs(s)
		path := a["url.path"].AsString()
		tok, _ := strings.CutPrefix(path, "/span/")
		checks := []struct{ what, got, want string }{
			{"kvgate.request_id", a["kvgate.request_id"].AsString(), "rid-" + tok},
			{"http.request.method", a["http.request.method"].AsString(), "GET"},
			{"tracestate", s.SpanContext.TraceState().String(), "k=" + strings.ReplaceAll(tok, "-", "_")},
		}
		for _, c := range checks {
			if c.got != c.want && bad < 10 {
				bad++
				t.Errorf("span for %q: %s %q, want %q", path, c.what, c.got, c.want)
			}
		}
	}
}
