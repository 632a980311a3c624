package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// One table of HTTP behaviours, each run against every engine:
// HTTP/1.1 plaintext, h2c, HTTPS with HTTP/1.1 and HTTPS with HTTP/2.
var engineCases = []struct {
	name string
	run  func(t *testing.T, e engine)
}{
	{"request id generated and echoed", testRequestID},
	{"hop-by-hop fields removed", testHopByHop},
	{"forwarded fields from untrusted peer", testForwarded},
	{"request body streams to upstream", testRequestBodyStreams},
	{"large body forwarded intact", testLargeBody},
	{"sse events arrive before upstream finishes", testSSEIncremental},
	{"streamed chunks of every size arrive whole and at once", testStreamChunkSizes},
	{"trailers pass through", testTrailers},
	{"404 when no route matches", testNoRoute},
	{"413 when body over limit", testBodyTooLarge},
	{"431 when too many headers", testTooManyHeaders},
	{"502 when upstream refuses", testConnectRefused},
	{"503 when pool has no endpoint", testNoEndpoint},
	{"504 when upstream is silent", testUpstreamTimeout},
	{"client cancel frees the upstream", testClientCancel},
	{"drain finishes an in-flight stream", testDrainStream},
}

func TestEngines(t *testing.T) {
	for _, c := range engineCases {
		t.Run(c.name, func(t *testing.T) { eachEngine(t, c.run) })
	}
}

func testRequestID(t *testing.T, e engine) {
	var seen atomic.Value
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Get("X-Request-Id"))
	}))
	p := startProxy(t, simple(addr))
	resp, _ := mustGet(t, e.client(), e.url(p, "/"))
	id := resp.Header.Get("X-Request-Id")
	if len(id) != 32 || seen.Load() != id {
		t.Fatalf("response id %q, upstream saw %q", id, seen.Load())
	}
	req, _ := http.NewRequest("GET", e.url(p, "/"), nil)
	req.Header.Set("X-Request-Id", "abc-123")
	resp2, err := e.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if got := resp2.Header.Get("X-Request-Id"); got != "abc-123" || seen.Load() != "abc-123" {
		t.Fatalf("kept id: response %q upstream %q", got, seen.Load())
	}
}

func testHopByHop(t *testing.T, e engine) {
	var got http.Header
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("Proxy-Authenticate", "Basic")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Kept", "yes")
	}))
	p := startProxy(t, simple(addr))
	req, _ := http.NewRequest("GET", e.url(p, "/"), nil)
	req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	req.Header.Set("X-Kept-Req", "yes")
	if e.proto == 1 {
		req.Header.Set("Connection", "X-Private")
		req.Header.Set("X-Private", "secret")
	}
	resp, err := e.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, h := range []string{"Proxy-Authorization", "X-Private", "Connection", "Keep-Alive"} {
		if got.Get(h) != "" {
			t.Errorf("upstream received hop-by-hop %s: %q", h, got.Get(h))
		}
	}
	if got.Get("X-Kept-Req") != "yes" {
		t.Errorf("end-to-end request header lost")
	}
	if resp.Header.Get("Proxy-Authenticate") != "" || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("client received hop-by-hop response fields: %v", resp.Header)
	}
	if resp.Header.Get("X-Kept") != "yes" {
		t.Errorf("end-to-end response header lost")
	}
}

func testForwarded(t *testing.T, e engine) {
	var got http.Header
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	p := startProxy(t, simple(addr))
	req, _ := http.NewRequest("GET", e.url(p, "/x"), nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Forwarded-Proto", "gopher")
	req.Header.Set("Forwarded", "for=203.0.113.9")
	resp, err := e.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	proto := e.scheme
	if xff := got.Values("X-Forwarded-For"); len(xff) != 1 || xff[0] != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want only 127.0.0.1 (client is not a trusted proxy)", xff)
	}
	if got.Get("X-Forwarded-Proto") != proto {
		t.Errorf("X-Forwarded-Proto = %q, want %q", got.Get("X-Forwarded-Proto"), proto)
	}
	if got.Get("X-Forwarded-Host") == "" {
		t.Errorf("X-Forwarded-Host missing")
	}
	if f := got.Get("Forwarded"); !strings.HasPrefix(f, "for=127.0.0.1;proto="+proto) || strings.Contains(f, "203.0.113.9") {
		t.Errorf("Forwarded = %q", f)
	}
}

func testRequestBodyStreams(t *testing.T, e engine) {
	firstChunk := make(chan struct{})
	var total atomic.Int64
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 4)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		close(firstChunk) // the proxy delivered the start before the client finished
		rest, _ := io.ReadAll(r.Body)
		total.Store(int64(4 + len(rest)))
		fmt.Fprintf(w, "%d", 4+len(rest))
	}))
	p := startProxy(t, simple(addr))
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("abcd"))
		select {
		case <-firstChunk:
		case <-time.After(5 * time.Second):
			pw.CloseWithError(fmt.Errorf("upstream never saw the first chunk: body was buffered"))
			return
		}
		pw.Write([]byte("efgh"))
		pw.Close()
	}()
	resp, err := e.client().Post(e.url(p, "/upload"), "text/plain", pr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "8" {
		t.Fatalf("status %d body %q", resp.StatusCode, b)
	}
}

func testLargeBody(t *testing.T, e engine) {
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		io.Copy(h, r.Body)
		w.Write([]byte(hex.EncodeToString(h.Sum(nil))))
	}))
	p := startProxy(t, simple(addr))
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	want := sha256.Sum256(body)
	resp, err := e.client().Post(e.url(p, "/"), "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != hex.EncodeToString(want[:]) {
		t.Fatalf("upstream digest %q differs", b)
	}
}

func testSSEIncremental(t *testing.T, e engine) {
	next := make(chan struct{})
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "data: {\"n\":%d}\n\n", i)
			w.(http.Flusher).Flush()
			if i < 3 {
				select {
				case <-next: // the client saw event i before event i+1 exists
				case <-time.After(5 * time.Second):
					return
				}
			}
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	p := startProxy(t, simple(addr))
	resp, err := e.client().Get(e.url(p, "/v1/chat/completions"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var events []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		events = append(events, line)
		if len(events) < 3 {
			next <- struct{}{}
		}
	}
	want := []string{`data: {"n":1}`, `data: {"n":2}`, `data: {"n":3}`, "data: [DONE]"}
	if fmt.Sprint(events) != fmt.Sprint(want) {
		t.Fatalf("events %q, want %q", events, want)
	}
}

// testStreamChunkSizes sends chunks whose sizes straddle the HTTP/1.1
// engine's wait buffer (waitBytes) and pooled copy buffer (32 KiB), each
// only after the client has read the one before: a copy that kept any byte
// of a chunk back until more data came would stall here.
func testStreamChunkSizes(t *testing.T, e engine) {
	sizes := []int{1, waitBytes - 1, waitBytes, waitBytes + 1, 3 * waitBytes, 32 << 10, 32<<10 + 1, 100 << 10, 7}
	chunk := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, sizes[i]) }
	next := make(chan struct{})
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range sizes {
			w.Write(chunk(i))
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-time.After(5 * time.Second):
				return
			}
		}
	}))
	p := startProxy(t, simple(addr))
	resp, err := e.client().Get(e.url(p, "/events"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for i := range sizes {
		got := make([]byte, sizes[i])
		if _, err := io.ReadFull(resp.Body, got); err != nil {
			t.Fatalf("chunk %d (%d bytes): %v", i, sizes[i], err)
		}
		if !bytes.Equal(got, chunk(i)) {
			t.Fatalf("chunk %d (%d bytes) differs", i, sizes[i])
		}
		next <- struct{}{}
	}
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
		t.Fatalf("after the last chunk: %d more bytes, %v", len(rest), err)
	}
}

func testTrailers(t *testing.T, e engine) {
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		w.Write([]byte("payload"))
		w.(http.Flusher).Flush()
		w.Header().Set("X-Checksum", "c0ffee")
	}))
	p := startProxy(t, simple(addr))
	resp, body := mustGet(t, e.client(), e.url(p, "/"))
	if body != "payload" || resp.Trailer.Get("X-Checksum") != "c0ffee" {
		t.Fatalf("body %q trailer %v", body, resp.Trailer)
	}
}

// openAIError decodes the error body shape every kvgate error uses.
func openAIError(t *testing.T, body string) (msg, typ, code string) {
	t.Helper()
	var v struct {
		Error struct{ Message, Type, Code string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.Error.Message == "" {
		t.Fatalf("body is not an OpenAI-shaped error: %q", body)
	}
	return v.Error.Message, v.Error.Type, v.Error.Code
}

func wantError(t *testing.T, resp *http.Response, body string, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, status, body)
	}
	if _, _, c := openAIError(t, body); c != code {
		t.Fatalf("code %q, want %q", c, code)
	}
}

func testNoRoute(t *testing.T, e engine) {
	p := startProxy(t, `routes:
  - {name: v1, matches: [{path: {type: PathPrefix, value: /v1}}], backends: [{pool: b}]}
pools:
  - {name: b, endpoints: ["127.0.0.1:1"]}`)
	resp, body := mustGet(t, e.client(), e.url(p, "/other"))
	wantError(t, resp, body, 404, "no_route")
}

func testBodyTooLarge(t *testing.T, e engine) {
	var reached atomic.Bool
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Store(true)
		io.Copy(io.Discard, r.Body)
	}))
	p := startProxy(t, simple(addr, "limits: {maxBodyBytes: 1024}"))
	resp, err := e.client().Post(e.url(p, "/"), "text/plain", bytes.NewReader(make([]byte, 4096)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantError(t, resp, string(b), 413, "body_too_large")
	if reached.Load() {
		t.Errorf("a body declared over the limit reached the upstream")
	}
	// A streamed body with no declared length is cut at the limit too.
	pr, pw := io.Pipe()
	go func() { pw.Write(make([]byte, 4096)); pw.Close() }()
	resp, err = e.client().Post(e.url(p, "/"), "text/plain", pr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("streamed over-limit body: status %d body %q", resp.StatusCode, b)
	}
	// The message names the configured limit (it once said "larger than -3072 bytes").
	if !strings.Contains(string(b), "larger than 1024 bytes") {
		t.Fatalf("streamed over-limit body: message %q does not name the 1024-byte limit", b)
	}
}

func testTooManyHeaders(t *testing.T, e engine) {
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	p := startProxy(t, simple(addr, "limits: {maxHeaders: 20}"))
	req, _ := http.NewRequest("GET", e.url(p, "/"), nil)
	for i := range 30 {
		req.Header.Set(fmt.Sprintf("X-H%d", i), "v")
	}
	resp, err := e.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantError(t, resp, string(b), 431, "too_many_headers")
}

func testConnectRefused(t *testing.T, e engine) {
	p := startProxy(t, simple("127.0.0.1:1"))
	resp, body := mustGet(t, e.client(), e.url(p, "/"))
	wantError(t, resp, body, 502, "upstream_connect_failed")
}

func testNoEndpoint(t *testing.T, e engine) {
	p := startProxy(t, `routes:
  - {name: r, backends: [{pool: b}]}
pools:
  - {name: b, dns: "kvgate-test.invalid:80", resolveInterval: 1h}`)
	resp, body := mustGet(t, e.client(), e.url(p, "/"))
	wantError(t, resp, body, 503, "no_ready_endpoint")
	if resp.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
}

func testUpstreamTimeout(t *testing.T, e engine) {
	release := make(chan struct{})
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer close(release)
	p := startProxy(t, simple(addr, "limits: {streamIdleTimeout: 200ms}"))
	resp, body := mustGet(t, e.client(), e.url(p, "/"))
	wantError(t, resp, body, 504, "upstream_timeout")
}

func testClientCancel(t *testing.T, e engine) {
	upstreamGone := make(chan struct{})
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		defer close(upstreamGone)
		for range 500 { // bounded: 10 s at most
			if _, err := fmt.Fprint(w, "data: tick\n\n"); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
	p := startProxy(t, simple(addr))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url(p, "/stream"), nil)
	resp, err := e.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if line != "data: tick\n" {
		t.Fatalf("first line %q", line)
	}
	cancel()
	resp.Body.Close()
	select {
	case <-upstreamGone:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream request still running 5s after the client went away")
	}
	waitInflightZero(t, p)
}

func waitInflightZero(t *testing.T, p *Proxy) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int64
		for _, pl := range p.snap.Load().pools {
			for _, e := range pl.list.Load().eps {
				inflight, _ := e.state.Inflight()
				n += inflight
			}
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests still counted in flight", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testDrainStream(t *testing.T, e engine) {
	started := make(chan struct{})
	finish := make(chan struct{})
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		close(started)
		select {
		case <-finish:
		case <-time.After(5 * time.Second):
		}
		fmt.Fprint(w, "data: two\n\n")
	}))
	p := startProxy(t, simple(addr))
	resp, err := e.client().Get(e.url(p, "/"))
	if err != nil {
		t.Fatal(err)
	}
	<-started
	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		drained <- p.Shutdown(ctx)
	}()
	// Readiness fails while the stream still runs.
	deadline := time.Now().Add(2 * time.Second)
	for !p.draining.Load() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	rr, err := http.Get("http://" + p.AdminAddr().String() + "/readyz")
	if err == nil {
		rr.Body.Close()
		if rr.StatusCode != 503 {
			t.Errorf("/readyz = %d while draining", rr.StatusCode)
		}
	}
	close(finish)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "data: one\n\ndata: two\n\n" {
		t.Fatalf("stream cut by drain: %q err %v", b, err)
	}
	if err := <-drained; err != nil {
		t.Fatalf("drain: %v", err)
	}
}
