package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvgate/kvgate/config"
	dto "github.com/prometheus/client_model/go"
)

// startTelemetryProxy is startProxy with an access log file and a hook run
// between New and Start. stop shuts the proxy down (flushing the log); it
// is also registered as cleanup and safe to call twice.
func startTelemetryProxy(t *testing.T, yaml string, setup func(*Proxy)) (p *Proxy, logPath string, stop func()) {
	t.Helper()
	certs(t)
	logPath = filepath.Join(t.TempDir(), "access.log")
	full := fmt.Sprintf(`
admin: {address: "127.0.0.1:0"}
accessLog: {path: %q}
listeners:
  - {name: plain, address: "127.0.0.1:0", protocols: [http1, http2]}
  - name: tls
    address: "127.0.0.1:0"
    protocols: [http1, http2]
    tls: {certFile: %q, keyFile: %q}
%s`, logPath, testCertFiles.cert, testCertFiles.key, yaml)
	cfg, err := config.Parse([]byte(full), "test.yaml")
	if err != nil {
		t.Fatalf("config: %v\n%s", err, full)
	}
	p, err = New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(p)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = p.Shutdown(ctx)
		})
	}
	t.Cleanup(stop)
	return p, logPath, stop
}

const (
	usageChunk = `{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":30,"completion_tokens":5,"total_tokens":35,"prompt_tokens_details":{"cached_tokens":16}}}`
	usageJSON  = `{"id":"c","object":"chat.completion","choices":[{"message":{"content":"\"usage\":{\"prompt_tokens\":99}"}}],` +
		"\n" + `"usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19, "prompt_tokens_details": {"cached_tokens": 8}}}`
)

// openAIBackend answers like a model server: an SSE stream with a usage
// chunk when the request asks for stream, else a JSON completion; any other
// path gets the JSON body too (which must not be counted). SSE events are
// flushed one by one.
func openAIBackend(stream string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(body), `"stream":true`) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, usageJSON)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		for _, ev := range strings.SplitAfter(stream, "\n\n") {
			_, _ = io.WriteString(w, ev)
			w.(http.Flusher).Flush()
		}
	})
}

func sseStream() string {
	var b strings.Builder
	for i := range 3 {
		fmt.Fprintf(&b, "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t%d usage\"}}],\"usage\":null}\n\n", i)
	}
	b.WriteString("data: " + usageChunk + "\n\ndata: [DONE]\n\n")
	return b.String()
}

// TestTokensFromUsage sends streaming and non-streaming completions on every
// engine and checks the bytes arrive unchanged, then that the access log
// and the GenAI metrics carry the usage each response reported, and that
// a path that is not an OpenAI endpoint is not counted.
func TestTokensFromUsage(t *testing.T) {
	stream := sseStream()
	addr := backend(t, openAIBackend(stream))
	p, logPath, stop := startTelemetryProxy(t, simple(addr), nil)
	requests := 0
	eachEngine(t, func(t *testing.T, e engine) {
		c := e.client()
		for _, tc := range []struct{ path, body, want string }{
			{"/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`, stream},
			{"/v1/chat/completions", `{"model":"m"}`, usageJSON},
			{"/other", `{"model":"m"}`, usageJSON},
		} {
			resp, err := c.Post(e.url(p, tc.path), "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(got) != tc.want {
				t.Fatalf("%s: body changed (%v):\n%q\nwant\n%q", tc.path, err, got, tc.want)
			}
			requests++
		}
	})
	// Each listener served two engines: two streams and two JSON bodies,
	// eight model replies in all, each with a first byte and a usage.
	var fams map[string]*dto.MetricFamily
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		fams = scrapeFamilies(t, p, "")
		if s := series(fams, "kvgate_gen_ai_client_token_usage", "gen_ai_token_type", "input"); len(s) == 1 && s[0].GetHistogram().GetSampleCount() == 8 {
			break
		}
	}
	lv := []string{"route", "r", "pool", "b", "endpoint", addr, "model", ""}
	for typ, sum := range map[string]float64{"input": 4 * (30 + 12), "output": 4 * (5 + 7)} {
		h := one(t, fams, "kvgate_gen_ai_client_token_usage", append(lv, "gen_ai_token_type", typ)...).GetHistogram()
		if h.GetSampleCount() != 8 || h.GetSampleSum() != sum {
			t.Errorf("%s tokens: %d replies, %v tokens; want 8, %v", typ, h.GetSampleCount(), h.GetSampleSum(), sum)
		}
	}
	if c := one(t, fams, "kvgate_gen_ai_usage_cache_read_input_tokens_total", lv...).GetCounter().GetValue(); c != 4*(16+8) {
		t.Errorf("cached input tokens %v, want %v", c, 4*(16+8))
	}
	// Time to first token for every reply; time per output token for
	// every reply with more than one output token (all of them here).
	for _, name := range []string{"kvgate_gen_ai_server_time_to_first_token_seconds", "kvgate_gen_ai_server_time_per_output_token_seconds", "kvgate_gen_ai_server_request_duration_seconds"} {
		if h := one(t, fams, name, lv...).GetHistogram(); h.GetSampleCount() != 8 || !(h.GetSampleSum() > 0) {
			t.Errorf("%s: count %d sum %v, want 8 and > 0", name, h.GetSampleCount(), h.GetSampleSum())
		}
	}
	if n := len(series(fams, "kvgate_gen_ai_client_token_usage", "route", "r")); n != 2 {
		t.Errorf("%d token usage series, want 2 (/other is not counted)", n)
	}
	stop()
	lines := readLog(t, logPath)
	if len(lines) != requests {
		t.Fatalf("%d access log lines, want %d", len(lines), requests)
	}
	counted := map[string]int{}
	for _, l := range lines {
		key := fmt.Sprintf("%v %v %v", l["prompt_tokens"], l["completion_tokens"], l["cached_tokens"])
		if l["path"] == "/other" {
			if l["prompt_tokens"] != nil {
				t.Errorf("/other logged tokens: %v", l)
			}
			continue
		}
		counted[key]++
	}
	if counted["30 5 16"] != 4 || counted["12 7 8"] != 4 || len(counted) != 2 {
		t.Fatalf("access log token fields: %v", counted)
	}
}

// waitMetric polls /metrics until it contains line (the request's
// accounting runs after the client has its last byte), bounded by 5s.
func waitMetric(t *testing.T, p *Proxy, line string) string {
	t.Helper()
	var body string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		_, body = mustGet(t, plainClient(), "http://"+p.AdminAddr().String()+"/metrics")
		if strings.Contains(body, line) {
			return body
		}
	}
	t.Fatalf("metrics never showed %s:\n%s", line, body)
	return ""
}

func readLog(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("access log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// TestOutcomeTTFT checks that a finished chat completion reports its time to
// first body byte to its endpoint (pick.Endpoint.Observe), on every engine,
// and that a non-OpenAI path does not: a backend that waits 40 ms before the
// first byte must show a TTFT of at least that, and one request per engine.
func TestOutcomeTTFT(t *testing.T) {
	const wait = 40 * time.Millisecond
	stream := sseStream()
	slow := openAIBackend(stream)
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush() // headers first: TTFT counts the body, not the headers
		time.Sleep(wait)
		slow.ServeHTTP(w, r)
	}))
	p, _, stop := startTelemetryProxy(t, simple(addr), nil)
	defer stop()
	sent := 0
	eachEngine(t, func(t *testing.T, e engine) {
		for _, path := range []string{"/v1/chat/completions", "/other"} {
			resp, err := e.client().Post(e.url(p, path), "application/json", strings.NewReader(`{"model":"m","stream":true}`))
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		sent++
	})
	ep := p.snap.Load().pools["b"].list.Load().eps[0].state
	var q []time.Duration
	var n int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if q, n = ep.TTFTQuantiles(0, 1); n >= sent {
			break
		}
	}
	if n != sent {
		t.Fatalf("endpoint observed %d TTFTs, want %d (one per engine, none for /other)", n, sent)
	}
	if q[0] < wait || q[1] > 10*time.Second {
		t.Fatalf("TTFT min %v max %v: want at least %v", q[0], q[1], wait)
	}
}

// TestDurationOneReading: a finished request's duration is read once, so
// the access log's duration_ms is the request histogram's observation in
// whole microseconds. Three readings (outcome, metrics, log) made the log
// and the metrics disagree by the time spent between them.
func TestDurationOneReading(t *testing.T) {
	addr := backend(t, openAIBackend(sseStream()))
	p, logPath, stop := startTelemetryProxy(t, simple(addr), nil)
	resp, err := plainClient().Post("http://"+p.Listener("plain").Addr().String()+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	stop() // the request finished before its reply ended; Shutdown flushes the log
	lines := readLog(t, logPath)
	var sumNS uint64
	p.metrics.mu.RLock()
	for _, s := range p.metrics.reqs {
		sumNS += s.duration.sum.Load()
	}
	p.metrics.mu.RUnlock()
	if len(lines) != 1 {
		t.Fatalf("%d access log lines, want 1", len(lines))
	}
	logUS := int64(math.Round(lines[0]["duration_ms"].(float64) * 1000))
	if want := int64(sumNS / 1000); logUS != want {
		t.Fatalf("access log duration %d µs, request histogram %d ns (%d µs): want the same reading", logUS, sumNS, want)
	}
}
