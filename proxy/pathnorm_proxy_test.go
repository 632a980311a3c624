package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// seenBackend answers with the request target and Host it received and
// remembers every target.
type seenBackend struct {
	mu   sync.Mutex
	uris []string
}

func (s *seenBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.uris = append(s.uris, r.RequestURI)
	s.mu.Unlock()
	fmt.Fprintf(w, "%s %s", r.Host, r.RequestURI)
}

func (s *seenBackend) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.uris
	s.uris = nil
	return u
}

// pathNormYAML: a catch-all route, a route only for host api.example.com
// under /only-api/, and a DENY on /admin and /admin/*.
func pathNormYAML(addr string) string {
	return fmt.Sprintf(`routes:
  - {name: r, backends: [{pool: b}]}
  - name: api-host
    hostnames: [api.example.com]
    matches: [{path: {type: PathPrefix, value: /only-api/}}]
    backends: [{pool: b}]
pools:
  - {name: b, endpoints: [%q]}
authorization:
  - name: no-admin
    action: DENY
    rules: [{to: [{paths: ["/admin", "/admin/*"]}]}]
`, addr)
}

// adminBypasses are request paths a backend resolves to /admin or below.
// Every one must be refused: 403 by the policy, or 400 for an escaped slash
// (paths.escapedSlashes: reject, the default).
var adminBypasses = []struct {
	path string
	code int
}{
	{"/admin", 403}, {"/admin/", 403}, {"/admin/x", 403},
	{"/%61dmin", 403}, {"/ad%6din", 403}, {"/%61dmin/x", 403}, {"/%41dmin", 200}, // %41 is 'A': another path
	{"//admin", 403}, {"///admin//x", 403}, {"/./admin", 403}, {"/x/../admin", 403},
	{"/x/%2e%2e/admin", 403}, {"/%2E/admin/", 403}, {"/x/.%2e/%61dmin/y", 403},
	{"/x\\..\\admin", 403}, {"/admin\\x", 403},
	{"/admin%2fx", 400}, {"/admin%2Fx", 400}, {"/x%2f..%2fadmin", 400}, {"/admin%5cx", 400},
}

// rawPathRequest builds a GET whose request target is exactly p (net/url
// would otherwise re-escape it).
func rawPathRequest(t *testing.T, base, p string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(p, "//") {
		req.URL.Path = p // an Opaque starting with // would become http://...
	} else {
		req.URL.Opaque = p
	}
	if got := req.URL.RequestURI(); got != p {
		t.Fatalf("client would send %q, not %q", got, p)
	}
	return req
}

// checkPathNorm sends every bypass and an allowed encoded path through c.
func checkPathNorm(t *testing.T, c *http.Client, base string, seen *seenBackend) {
	t.Helper()
	for _, b := range adminBypasses {
		resp, body := do(t, c, rawPathRequest(t, base, b.path))
		if resp.StatusCode != b.code {
			t.Errorf("%s: %d %q; want %d", b.path, resp.StatusCode, body, b.code)
			continue
		}
		switch b.code {
		case 403:
			if !strings.Contains(body, `"authz_denied"`) || !strings.Contains(body, "no-admin") {
				t.Errorf("%s: 403 without the policy: %s", b.path, body)
			}
		case 400:
			if !strings.Contains(body, `"code":"path_escaped_slash"`) || !strings.Contains(body, "paths.escapedSlashes") {
				t.Errorf("%s: 400 does not say what to do: %s", b.path, body)
			}
		}
	}
	for _, u := range seen.take() {
		if u != "/Admin" {
			t.Errorf("the backend was asked for %q", u)
		}
	}
	// An allowed path reaches the upstream normalised, its query untouched.
	resp, body := do(t, c, rawPathRequest(t, base, "/%76%31//x/../models%2c%7e?a=%2F&b=..%2f"))
	if want := " /v1/models%2C~?a=%2F&b=..%2f"; resp.StatusCode != 200 || !strings.HasSuffix(body, want) {
		t.Errorf("allowed encoded path: %d %q; want the upstream to see %q", resp.StatusCode, body, want)
	}
	seen.take()
}

// TestPathNormalizationBlocksBypasses: a DENY on /admin and /admin/* holds
// against encoded, dotted, doubled and backslashed spellings over every
// engine, and the backend never sees /admin.
func TestPathNormalizationBlocksBypasses(t *testing.T) {
	seen := &seenBackend{}
	p := startProxy(t, pathNormYAML(backend(t, seen)))
	eachEngine(t, func(t *testing.T, e engine) {
		checkPathNorm(t, e.client(), e.url(p, ""), seen)
	})
	t.Run("http1 malformed", func(t *testing.T) {
		base := engines()[0].url(p, "")
		for _, c := range []struct{ path, code string }{
			{"/%zz", "path_bad_escape"}, {"/a%4", "path_bad_escape"}, {"/a%00", "path_encoded_nul"},
			{"/a#b", "path_fragment"}, {"/a?b#c", "path_fragment"},
		} {
			resp, body := do(t, plainClient(), rawPathRequest(t, base, c.path))
			wantError(t, resp, body, 400, c.code)
		}
		// Bytes net/http will not send, through a raw connection.
		for _, target := range []string{"/a\x01b", "/a\x7f", "/a?b\x1b"} {
			if code, body := rawGet(t, p.Listener("plain").Addr().String(), target, "h"); code != 400 {
				t.Errorf("%q: %d %q; want 400", target, code, body)
			}
		}
		if u := seen.take(); len(u) != 0 {
			t.Errorf("the backend was asked for %q", u)
		}
	})
}

// rawGet sends one HTTP/1.1 GET with the request target written as it is.
func rawGet(t *testing.T, addr, target, host string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, host)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

func TestPathNormalizationHTTP3(t *testing.T) {
	env := newIDEnv(t)
	seen := &seenBackend{}
	yaml := env.identityYAML() + "listeners:\n" + mtlsListener("m", "request", ", http3") + pathNormYAML(backend(t, seen))
	p := runProxy(t, yaml, nil)
	checkPathNorm(t, h3Client(t, spiffeTLS(t, nil)), "https://"+p.Listener("m").Addr().String(), seen)
}

// TestPathNormalizationOptions: escapedSlashes decode and keep, and
// mergeSlashes off, as the upstream sees them.
func TestPathNormalizationOptions(t *testing.T) {
	cases := []struct {
		paths, path string
		code        int
		upstream    string
	}{
		{"{escapedSlashes: decode}", "/admin%2fx", 403, ""},
		{"{escapedSlashes: decode}", "/a%2Fb%5Cc", 200, "/a/b/c"},
		{"{escapedSlashes: keep}", "/a%2fb/../c", 200, "/c"},
		{"{escapedSlashes: keep}", "/a/..%2F..%2Fadmin", 200, "/a/..%2F..%2Fadmin"},
		{"{mergeSlashes: false}", "/a//b", 200, "/a//b"},
		{"{mergeSlashes: false}", "//admin", 200, "//admin"},
		{"{mergeSlashes: false}", "/x/../admin", 403, ""},
	}
	for _, c := range cases {
		t.Run(c.paths+" "+c.path, func(t *testing.T) {
			seen := &seenBackend{}
			p := startProxy(t, pathNormYAML(backend(t, seen))+"paths: "+c.paths+"\n")
			resp, body := do(t, plainClient(), rawPathRequest(t, engines()[0].url(p, ""), c.path))
			if resp.StatusCode != c.code || c.code == 200 && !strings.HasSuffix(body, " "+c.upstream) {
				t.Fatalf("%d %q; want %d and upstream %q", resp.StatusCode, body, c.code, c.upstream)
			}
		})
	}
}

// TestAbsoluteFormRequestLine: "GET http://host/path HTTP/1.1" (RFC 9112
// §3.2.2) routes by the target's host, not the Host header, and its path is
// normalised.
func TestAbsoluteFormRequestLine(t *testing.T) {
	seen := &seenBackend{}
	p := startProxy(t, pathNormYAML(backend(t, seen)))
	addr := p.Listener("plain").Addr().String()
	send := func(target, host string) (int, string) { t.Helper(); return rawGet(t, addr, target, host) }
	cases := []struct {
		target, host string
		code         int
		body         string
	}{
		{"http://api.example.com/only-api/%61/../b?q=1", "other.example", 200, "api.example.com /only-api/b?q=1"},
		{"HTTP://api.example.com:80/only-api/x", "ignored.example", 200, "api.example.com:80 /only-api/x"},
		{"http://other.example/only-api/x", "api.example.com", 200, "other.example /only-api/x"}, // the catch-all route
		{"http://api.example.com/x/../%61dmin", "api.example.com", 403, "no-admin"},
		{"http://u@api.example.com/only-api/x", "api.example.com", 400, "invalid_request_error"}, // fasthttp or kvgate refuses userinfo
	}
	for _, c := range cases {
		code, body := send(c.target, c.host)
		if code != c.code || !strings.Contains(body, c.body) {
			t.Errorf("GET %s (Host %q): %d %q; want %d with %q", c.target, c.host, code, body, c.code, c.body)
		}
	}
	// The host of the target, not the Host header, picked the route.
	code, body := send("/only-api/x", "other.example")
	if code != 200 || body != "other.example /only-api/x" {
		t.Errorf("origin-form: %d %q", code, body)
	}
}

// TestNormalisedPathToH2Upstream: rewritten paths live in a buffer the next
// request reuses; the HTTP/2 client's HPACK table keeps :path values, so
// each must reach an h2c upstream as it was, request after request.
func TestNormalisedPathToH2Upstream(t *testing.T) {
	seen := &seenBackend{}
	p := startProxy(t, fmt.Sprintf(`routes:
  - {name: r, backends: [{pool: b}]}
pools:
  - {name: b, endpoints: [%q], protocol: h2c}
`, h2cBackend(t, seen)))
	for _, e := range engines()[:2] { // fasthttp and net/http engines
		c := e.client()
		for i := range 20 {
			p0 := fmt.Sprintf("/%%61/./%d", i%4) // /a/0 ... /a/3, each seen several times
			resp, body := do(t, c, rawPathRequest(t, e.url(p, ""), p0))
			if want := fmt.Sprintf(" /a/%d", i%4); resp.StatusCode != 200 || !strings.HasSuffix(body, want) {
				t.Fatalf("%s request %d %s: %d %q; want the upstream to see %q", e.name, i, p0, resp.StatusCode, body, want)
			}
		}
	}
}

// TestNormalisedPathInLogAndSpan: the access log and the span record the
// normalised path, and a span keeps its own copy once the buffer is reused.
func TestNormalisedPathInLogAndSpan(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	p, logPath, stop := startTelemetryProxy(t, simple(backend(t, &seenBackend{})), memTracing(exp))
	e := engines()[0]
	c := e.client()
	const n = 6
	for i := range n {
		if resp, body := do(t, c, rawPathRequest(t, e.url(p, ""), fmt.Sprintf("/v1/./%%6d%d", i))); resp.StatusCode != 200 {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	}
	spans := serverSpans(waitSpans(t, exp, 2*n)) // a server and a client span each
	stop()
	lines := readLog(t, logPath)
	if len(lines) != n {
		t.Fatalf("%d access log lines, want %d", len(lines), n)
	}
	for i := range n {
		want := fmt.Sprintf("/v1/m%d", i)
		if got := attrs(spans[i])["url.path"].AsString(); got != want {
			t.Errorf("span %d url.path %q, want %q", i, got, want)
		}
		if got := lines[i]["path"]; got != want {
			t.Errorf("access log line %d path %v, want %q", i, got, want)
		}
	}
}
