package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// named answers with its name in X-Backend and counts hits.
type named struct {
	name string
	hits atomic.Int64
}

func (n *named) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.hits.Add(1)
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("X-Backend", n.name)
	_, _ = io.WriteString(w, n.name)
}

func plainURL(p *Proxy, path string) string { return engines()[0].url(p, path) }

func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestHeaderModifiers(t *testing.T) {
	var got atomic.Pointer[http.Header]
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		got.Store(&h)
		w.Header().Set("X-Secret", "s")
		w.Header().Set("X-Resp-Set", "from-upstream")
	}))
	p := startProxy(t, fmt.Sprintf(`routes:
  - name: r
    filters:
      - requestHeaderModifier:
          set: [{name: X-Set, value: route}]
          add: [{name: X-Add, value: added}]
          remove: [X-Drop]
      - responseHeaderModifier:
          set: [{name: X-Resp-Set, value: proxy}]
          add: [{name: X-Resp-Add, value: "1"}]
          remove: [X-Secret]
    backends:
      - pool: b
        filters:
          - requestHeaderModifier: {set: [{name: X-Backend-Set, value: b}]}
pools:
  - {name: b, endpoints: [%q]}`, addr))
	eachEngine(t, func(t *testing.T, e engine) {
		req, _ := http.NewRequest("GET", e.url(p, "/"), nil)
		req.Header.Set("X-Set", "client")
		req.Header.Set("X-Add", "client")
		req.Header.Set("X-Drop", "gone")
		req.Header.Set("X-Other", "kept")
		resp, _ := do(t, e.client(), req)
		h := *got.Load()
		if v := h.Values("X-Set"); len(v) != 1 || v[0] != "route" {
			t.Errorf("X-Set upstream = %q, want [route]", v)
		}
		if v := h.Values("X-Add"); len(v) != 2 || v[0] != "client" || v[1] != "added" {
			t.Errorf("X-Add upstream = %q, want [client added]", v)
		}
		if h.Get("X-Drop") != "" || h.Get("X-Other") != "kept" || h.Get("X-Backend-Set") != "b" {
			t.Errorf("upstream headers %v", h)
		}
		if resp.Header.Get("X-Secret") != "" || resp.Header.Get("X-Resp-Set") != "proxy" || resp.Header.Get("X-Resp-Add") != "1" {
			t.Errorf("response headers %v", resp.Header)
		}
	})
}

func TestURLRewritePrefix(t *testing.T) {
	var host, uri atomic.Value
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host.Store(r.Host)
		uri.Store(r.RequestURI)
	}))
	p := startProxy(t, fmt.Sprintf(`routes:
  - name: r
    matches: [{path: {type: PathPrefix, value: /api}}]
    filters:
      - urlRewrite: {hostname: upstream.example, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}
    backends: [{pool: b}]
pools:
  - {name: b, endpoints: [%q]}`, addr))
	eachEngine(t, func(t *testing.T, e engine) {
		for _, c := range []struct{ in, want string }{
			{"/api/items?q=1", "/v2/items?q=1"},
			{"/api", "/v2"},
			{"/api/", "/v2/"},
		} {
			resp, _ := mustGet(t, e.client(), e.url(p, c.in))
			if resp.StatusCode != 200 || uri.Load() != c.want || host.Load() != "upstream.example" {
				t.Errorf("%s: status %d, upstream saw %v %v, want %s upstream.example", c.in, resp.StatusCode, uri.Load(), host.Load(), c.want)
			}
		}
	})
}

func TestRedirect(t *testing.T) {
	n := &named{name: "b"}
	addr := backend(t, n)
	p := startProxy(t, fmt.Sprintf(`routes:
  - name: r
    matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
      - requestRedirect: {scheme: https, hostname: new.example, statusCode: 301, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
    backends: [{pool: b}]
pools:
  - {name: b, endpoints: [%q]}`, addr))
	c := plainClient()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ := mustGet(t, c, plainURL(p, "/old/page?x=1"))
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://new.example/new/page?x=1" {
		t.Fatalf("status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n.hits.Load() != 0 {
		t.Fatalf("redirect reached the upstream %d times", n.hits.Load())
	}
}

func TestWeightedSplit(t *testing.T) {
	a, b, z := &named{name: "a"}, &named{name: "b"}, &named{name: "z"}
	p := startProxy(t, fmt.Sprintf(`routes:
  - name: r
    backends: [{pool: a, weight: 70}, {pool: b, weight: 30}, {pool: z, weight: 0}]
pools:
  - {name: a, endpoints: [%q]}
  - {name: b, endpoints: [%q]}
  - {name: z, endpoints: [%q]}`, backend(t, a), backend(t, b), backend(t, z)))
	c := plainClient()
	const total = 1000
	for range total {
		resp, _ := mustGet(t, c, plainURL(p, "/"))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	na, nb := a.hits.Load(), b.hits.Load()
	if na+nb != total || z.hits.Load() != 0 {
		t.Fatalf("hits a=%d b=%d z=%d, want %d in all and none to z", na, nb, z.hits.Load(), total)
	}
	if na < 650 || na > 750 {
		t.Fatalf("a got %d of %d, want 700 ± 50", na, total)
	}
}

func TestHeaderCanary(t *testing.T) {
	v1, v2 := &named{name: "v1"}, &named{name: "v2"}
	p := startProxy(t, fmt.Sprintf(`routes:
  - name: canary
    matches: [{path: {value: /v1/}, headers: [{name: x-canary, value: "true"}]}]
    backends: [{pool: v2}]
  - name: default
    matches: [{path: {value: /}}]
    backends: [{pool: v1, weight: 95}, {pool: v2, weight: 5}]
pools:
  - {name: v1, endpoints: [%q]}
  - {name: v2, endpoints: [%q]}`, backend(t, v1), backend(t, v2)))
	c := plainClient()
	for range 100 {
		req, _ := http.NewRequest("GET", plainURL(p, "/v1/chat"), nil)
		req.Header.Set("X-Canary", "true")
		if resp, _ := do(t, c, req); resp.Header.Get("X-Backend") != "v2" {
			t.Fatalf("canary request went to %q", resp.Header.Get("X-Backend"))
		}
	}
	if v1.hits.Load() != 0 || v2.hits.Load() != 100 {
		t.Fatalf("hits v1=%d v2=%d", v1.hits.Load(), v2.hits.Load())
	}
}

func TestStickyHeader(t *testing.T) {
	a, b := &named{name: "a"}, &named{name: "b"}
	p := startProxy(t, fmt.Sprintf(`routes:
  - name: r
    sessionAffinity: {header: x-session}
    backends: [{pool: a}, {pool: b}]
pools:
  - {name: a, endpoints: [%q]}
  - {name: b, endpoints: [%q]}`, backend(t, a), backend(t, b)))
	c := plainClient()
	seen := map[string]int{}
	for k := range 20 {
		key := "session-" + strconv.Itoa(k)
		first := ""
		for range 10 {
			req, _ := http.NewRequest("GET", plainURL(p, "/"), nil)
			req.Header.Set("X-Session", key)
			resp, _ := do(t, c, req)
			got := resp.Header.Get("X-Backend")
			if first == "" {
				first = got
			} else if got != first {
				t.Fatalf("key %s moved from %s to %s", key, first, got)
			}
		}
		seen[first]++
	}
	if seen["a"] == 0 || seen["b"] == 0 {
		t.Fatalf("20 keys all on one backend: %v", seen)
	}
}

func TestMirror(t *testing.T) {
	primary := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%x", sha256.Sum256(b))
	}))
	mirrored := make(chan []byte, 1)
	release := make(chan struct{})
	shadow := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mirrored <- b
		<-release // a mirror that never answers on its own
	}))
	p := startProxy(t, fmt.Sprintf(`routes:
  - name: r
    filters: [{requestMirror: {pool: shadow}}]
    backends: [{pool: main}]
pools:
  - {name: main, endpoints: [%q]}
  - {name: shadow, endpoints: [%q]}`, primary, shadow))
	body := bytes.Repeat([]byte("mirror me "), 10<<10) // 100 KiB
	c := plainClient()
	c.Timeout = 10 * time.Second
	resp, got := do(t, c, mustReq(t, "POST", plainURL(p, "/x"), body))
	if resp.StatusCode != 200 || got != fmt.Sprintf("%x", sha256.Sum256(body)) {
		t.Fatalf("primary: status %d body %q", resp.StatusCode, got)
	}
	// The primary is complete; the mirror is blocked (release is open).
	select {
	case m := <-mirrored:
		if !bytes.Equal(m, body) {
			t.Fatalf("mirror got %d bytes, want the same %d-byte body", len(m), len(body))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("mirror never received the request")
	}
	close(release)
}

func mustReq(t *testing.T, method, url string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

func TestRetryAfter503(t *testing.T) {
	var hits atomic.Int64
	var bodies sync.Map
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		bodies.Store(n, string(b))
		if n == 1 {
			w.WriteHeader(503)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	p2 := startProxy(t, fmt.Sprintf(`routes:
  - {name: r, backends: [{pool: b}], retry: {attempts: 2, codes: [503], backoff: 1ms}}
pools:
  - {name: b, endpoints: [%q]}`, addr))
	body := []byte(`{"model":"m","prompt":"retry me"}`)
	resp, got := do(t, plainClient(), mustReq(t, "POST", plainURL(p2, "/"), body))
	if resp.StatusCode != 200 || got != "ok" || hits.Load() != 2 {
		t.Fatalf("status %d body %q hits %d", resp.StatusCode, got, hits.Load())
	}
	for i := int64(1); i <= 2; i++ {
		if b, _ := bodies.Load(i); b != string(body) {
			t.Fatalf("try %d sent body %q", i, b)
		}
	}
	if m := metricsText(t, p2); !strings.Contains(m, `kvgate_retries_total{result="retried"} 1`) {
		t.Fatalf("retry not counted:\n%s", m)
	}
}

func TestNoRetryAfterFirstByte(t *testing.T) {
	var hits atomic.Int64
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n")
		_ = buf.Flush()
		time.Sleep(50 * time.Millisecond) // let the first chunk reach the client
		_ = conn.(*net.TCPConn).SetLinger(0)
		conn.Close() // reset mid-body
	}))
	p := startProxy(t, fmt.Sprintf(`routes:
  - {name: r, backends: [{pool: b}], retry: {attempts: 3, codes: [502, 503]}}
pools:
  - {name: b, endpoints: [%q]}`, addr))
	resp, err := plainClient().Get(plainURL(p, "/"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || err == nil || string(b) != "partial" {
		t.Fatalf("status %d, read %q, err %v: want a truncated 200", resp.StatusCode, b, err)
	}
	if hits.Load() != 1 {
		t.Fatalf("upstream hit %d times, want 1", hits.Load())
	}
}

func TestRetryConnectFailureOtherEndpoint(t *testing.T) {
	n := &named{name: "good"}
	p := startProxy(t, fmt.Sprintf(`routes:
  - {name: r, backends: [{pool: b}], retry: {attempts: 1, backoff: 1ms}}
pools:
  - {name: b, balancer: round-robin, endpoints: ["127.0.0.1:1", %q]}`, backend(t, n)))
	for range 6 {
		resp, _ := do(t, plainClient(), mustReq(t, "POST", plainURL(p, "/"), []byte(`{"a":1}`)))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d, want 200 after a retry on the other endpoint", resp.StatusCode)
		}
	}
}

func TestBackendRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/silent" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		// Headers at once, then a body slower than the per-try timeout.
		w.(http.Flusher).Flush()
		for i := range 5 {
			fmt.Fprintf(w, "chunk%d\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(60 * time.Millisecond)
		}
	}))
	p := startProxy(t, fmt.Sprintf(`routes:
  - {name: r, backends: [{pool: b}], timeouts: {backendRequest: 150ms}}
pools:
  - {name: b, endpoints: [%q]}`, addr))
	resp, body := mustGet(t, plainClient(), plainURL(p, "/silent"))
	wantError(t, resp, body, 504, "upstream_timeout")
	resp, body = mustGet(t, plainClient(), plainURL(p, "/stream"))
	if resp.StatusCode != 200 || strings.Count(body, "chunk") != 5 {
		t.Fatalf("stream cut by the per-try timeout: status %d body %q", resp.StatusCode, body)
	}
}

func TestRequestTimeoutAcrossRetries(t *testing.T) {
	var hits atomic.Int64
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(503)
	}))
	p := startProxy(t, fmt.Sprintf(`routes:
  - name: r
    backends: [{pool: b}]
    timeouts: {request: 300ms}
    retry: {attempts: 20, codes: [503], backoff: 50ms, budgetPercent: 100}
pools:
  - {name: b, endpoints: [%q]}`, addr))
	resp, _ := mustGet(t, plainClient(), plainURL(p, "/"))
	if resp.StatusCode != 503 && resp.StatusCode != 504 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if h := hits.Load(); h < 2 || h > 20 {
		t.Fatalf("%d tries within a 300ms request timeout and 50ms+ backoffs", h)
	}
}

func metricsText(t *testing.T, p *Proxy) string {
	t.Helper()
	_, b := mustGet(t, plainClient(), "http://"+p.AdminAddr().String()+"/metrics")
	return b
}

// chatBody builds an OpenAI chat body; with modelLast the model follows a
// messages array of about pad bytes.
func chatBody(model string, pad int, modelLast bool) []byte {
	msgs, _ := json.Marshal([]map[string]string{{"role": "user", "content": strings.Repeat("x", pad)}})
	if modelLast {
		return []byte(`{"messages":` + string(msgs) + `,"stream":false,"model":"` + model + `"}`)
	}
	return []byte(`{"model":"` + model + `","messages":` + string(msgs) + `}`)
}

func TestModelRouting(t *testing.T) {
	type seen struct {
		pool string
		sum  [32]byte
		cl   int64
	}
	var last atomic.Pointer[seen]
	mk := func(name string) string {
		return backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			last.Store(&seen{name, sha256.Sum256(b), r.ContentLength})
		}))
	}
	p := startProxy(t, fmt.Sprintf(`routes:
  - name: big
    matches: [{path: {value: /v1/}, model: {value: big-model}}]
    backends: [{pool: big}]
  - name: rest
    backends: [{pool: small}]
pools:
  - {name: big, endpoints: [%q]}
  - {name: small, endpoints: [%q]}`, mk("big"), mk("small")))
	cases := []struct {
		name string
		body []byte
		want string
	}{
		{"model first", chatBody("big-model", 100, false), "big"},
		{"model after 100 KiB of messages", chatBody("big-model", 100<<10, true), "big"},
		{"other model", chatBody("small-model", 100<<10, true), "small"},
		{"model past the 128 KiB prefix", chatBody("big-model", 200<<10, true), "small"},
		{"not json", []byte("model=big-model"), "small"},
	}
	eachEngine(t, func(t *testing.T, e engine) {
		for _, c := range cases {
			resp, _ := do(t, e.client(), mustReq(t, "POST", e.url(p, "/v1/chat/completions"), c.body))
			s := last.Load()
			if resp.StatusCode != 200 || s.pool != c.want {
				t.Errorf("%s: status %d pool %q, want %q", c.name, resp.StatusCode, s.pool, c.want)
			}
			if s.sum != sha256.Sum256(c.body) {
				t.Errorf("%s: body changed on the way", c.name)
			}
		}
	})
}

func TestModelRewrite(t *testing.T) {
	var got atomic.Value
	var cl atomic.Int64
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(b)
		cl.Store(r.ContentLength)
	}))
	p := startProxy(t, fmt.Sprintf(`routes:
  - name: r
    backends: [{pool: b, modelRewrite: [{model: llama-3.1-8b-instruct-with-a-longer-name}]}]
pools:
  - {name: b, endpoints: [%q]}`, addr))
	eachEngine(t, func(t *testing.T, e engine) {
		for _, body := range [][]byte{chatBody("m", 10, false), chatBody("m", 300<<10, true)} {
			resp, _ := do(t, e.client(), mustReq(t, "POST", e.url(p, "/v1/chat/completions"), body))
			b := got.Load().([]byte)
			want := bytes.Replace(body, []byte(`"model":"m"`), []byte(`"model":"llama-3.1-8b-instruct-with-a-longer-name"`), 1)
			if resp.StatusCode != 200 || !bytes.Equal(b, want) {
				t.Fatalf("status %d, upstream body differs (len %d, want %d)", resp.StatusCode, len(b), len(want))
			}
			if cl.Load() != int64(len(want)) {
				t.Fatalf("Content-Length %d, want %d", cl.Load(), len(want))
			}
		}
	})
}

// timeouts.request bounds the whole exchange, the streamed body included.
func TestRequestTimeoutCutsStream(t *testing.T) {
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for range 40 { // 2 s if nobody cuts it
			if _, err := io.WriteString(w, "data: tick\n\n"); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}))
	p := startProxy(t, `routes:
  - {name: r, backends: [{pool: b}], timeouts: {request: 300ms}}
pools:
  - {name: b, endpoints: ["`+addr+`"]}`)
	eachEngine(t, func(t *testing.T, e engine) {
		resp, err := e.client().Get(e.url(p, "/stream"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if n := strings.Count(string(b), "data: tick"); n == 0 || n >= 40 {
			t.Fatalf("got %d events; the stream should start and be cut by timeouts.request", n)
		}
	})
}

// kvgate's own answer to timeouts.request (504) reaches the client whole:
// the deadline bounds the upstream's stream, not the error body written
// after it passed (which the client once got as an EOF instead).
func TestRequestTimeoutAnswerIsWhole(t *testing.T) {
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	p := startProxy(t, fmt.Sprintf(`routes:
  - name: r
    backends: [{pool: b}]
    timeouts: {request: 100ms}
pools:
  - {name: b, endpoints: [%q]}`, addr))
	eachEngine(t, func(t *testing.T, e engine) {
		resp, body := mustGet(t, e.client(), e.url(p, "/"))
		_, _, code := openAIError(t, body)
		if resp.StatusCode != 504 || code != "upstream_timeout" && code != "request_timeout" {
			t.Fatalf("status %d code %q body %q; want 504 upstream_timeout or request_timeout", resp.StatusCode, code, body)
		}
	})
}
