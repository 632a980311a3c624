package proxy

import (
	"bufio"
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/pick"
	"github.com/kvgate/kvgate/sim"
)

// startSims starts n simulators on loopback and returns their addresses.
func startSims(t *testing.T, n int, cfg sim.Config) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		r, err := sim.Start(context.Background(), "127.0.0.1:0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		addrs[i] = r.Addr
	}
	return addrs
}

// inferProxy runs kvgate with one route to an inference pool "llm" over addrs.
func inferProxy(t *testing.T, addrs []string, inference string, route string) *Proxy {
	t.Helper()
	q := make([]string, len(addrs))
	for i, a := range addrs {
		q[i] = fmt.Sprintf("%q", a)
	}
	if inference == "" {
		inference = "{}"
	}
	return startProxy(t, fmt.Sprintf(`routes:
  - {name: r, backends: [{pool: llm}]%s}
pools:
  - name: llm
    endpoints: [%s]
    inference: %s
`, route, strings.Join(q, ", "), inference))
}

type answer struct {
	status   int
	endpoint string
	header   http.Header
	body     []byte
	cached   int
}

func postTo(t *testing.T, c *http.Client, url, body string, hdr ...string) answer {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, endpoint: resp.Header.Get("x-kvgate-endpoint"), header: resp.Header, body: b}
	var u struct {
		Usage struct {
			Details struct {
				Cached int `json:"cached_tokens"`
			} `json:"prompt_tokens_details"`
		} `json:"usage"`
	}
	if json.Unmarshal(b, &u) == nil {
		a.cached = u.Usage.Details.Cached
	}
	return a
}

func completion(model, salt, prompt string) string {
	b, _ := json.Marshal(map[string]any{"model": model, "prompt": prompt, "max_tokens": 2, "cache_salt": salt})
	return string(b)
}

func textOf(tag string, n int) string {
	return strings.Repeat(tag+": the quick brown fox jumps over the lazy dog. ", n/40+1)[:n]
}

// picks sums kvgate_picks_total of one reason over every endpoint.
func picks(p *Proxy, reason pick.Reason) uint64 {
	var n uint64
	for _, e := range p.infer.get("llm").endpoints().states {
		n += e.Picks(reason)
	}
	return n
}

func TestInferenceAffinityAndCacheReuse(t *testing.T) {
	addrs := startSims(t, 4, sim.Config{})
	p := inferProxy(t, addrs, "{endpointHeader: true}", "")
	c := plainClient()
	url := engines()[0].url(p, "/v1/completions")
	base := textOf("conversation", 2048)
	first := postTo(t, c, url, completion("sim-model", "", base))
	if first.status != 200 || first.endpoint == "" {
		t.Fatalf("first: %d %q %s", first.status, first.endpoint, first.body)
	}
	prev := first.cached
	for i := range 5 {
		base += fmt.Sprintf(" turn %d: %s", i, textOf("more", 300))
		a := postTo(t, c, url, completion("sim-model", "", base))
		if a.endpoint != first.endpoint {
			t.Fatalf("turn %d went to %s, want %s (affinity)", i, a.endpoint, first.endpoint)
		}
		if a.cached <= prev {
			t.Fatalf("turn %d: cached_tokens %d, want more than %d", i, a.cached, prev)
		}
		prev = a.cached
	}
	if n := picks(p, pick.ReasonAffinity); n != 5 {
		t.Errorf("affinity picks = %d, want 5", n)
	}
	m := scrapeAdmin(t, p)
	for _, want := range []string{`kvgate_picks_total{endpoint="` + first.endpoint + `",pool="llm",reason="affinity"} 5`,
		`kvgate_prefix_match_ratio_count{pool="llm"} 6`, `kvgate_prefix_index_entries{pool="llm"}`,
		`kvgate_picker_recent_picks{endpoint="` + first.endpoint + `",pool="llm"} 6`, `kvgate_endpoint_kv_utilization{endpoint=`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func scrapeAdmin(t *testing.T, p *Proxy) string {
	t.Helper()
	_, body := mustGet(t, http.DefaultClient, "http://"+p.AdminAddr().String()+"/metrics")
	return body
}

func TestInferenceModelAndSaltIsolation(t *testing.T) {
	addrs := startSims(t, 4, sim.Config{})
	p := inferProxy(t, addrs, "{endpointHeader: true}", "")
	c := plainClient()
	url := engines()[0].url(p, "/v1/completions")
	text := textOf("shared", 4096)
	if a := postTo(t, c, url, completion("sim-model", "", text)); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if a := postTo(t, c, url, completion("sim-model", "tenant-b", text)); a.status != 200 || a.cached != 0 {
		t.Fatalf("salted request: %d, cached %d; a salt must not share cache", a.status, a.cached)
	}
	postTo(t, c, url, completion("other-model", "", text)) // the sim answers 404; the pick is what counts
	if n := picks(p, pick.ReasonAffinity); n != 0 {
		t.Errorf("%d affinity picks across models or salts, want 0", n)
	}
	if n := picks(p, pick.ReasonPlacement); n != 3 {
		t.Errorf("%d placement picks, want 3 (one per model/salt)", n)
	}
}

// openStream starts a streaming completion and returns once the first event
// arrived, with the endpoint and a cancel func.
func openStream(t *testing.T, c *http.Client, url, body string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		cancel()
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		cancel()
		t.Fatal(err)
	}
	return resp.Header.Get("x-kvgate-endpoint"), func() { cancel(); resp.Body.Close() }
}

func streaming(prompt string, maxTokens int) string {
	b, _ := json.Marshal(map[string]any{"model": "sim-model", "prompt": prompt, "max_tokens": maxTokens, "stream": true})
	return string(b)
}

func TestInferenceSpillsOverAtLoadBound(t *testing.T) {
	addrs := startSims(t, 3, sim.Config{DecodePerToken: 20 * time.Millisecond, MaxBatch: 64})
	p := inferProxy(t, addrs, "{endpointHeader: true, scrapeInterval: 1h}", "")
	c := plainClient()
	url := engines()[0].url(p, "/v1/completions")
	prompt := textOf("hot", 2048)
	seen := map[string]int{}
	for range 12 {
		ep, cancel := openStream(t, c, url, streaming(prompt, 500))
		defer cancel()
		seen[ep]++
	}
	if len(seen) < 2 || picks(p, pick.ReasonSpillover) == 0 {
		t.Fatalf("12 open streams of one prefix: %v, %d spill-overs; want the load bound to spread them", seen, picks(p, pick.ReasonSpillover))
	}
	for _, n := range seen {
		// An endpoint caching the whole prompt may reach twice the bound
		// (router affinityStretch): 2 × ceil(1.25 × 12 / 3) = 10.
		if n > 10 {
			t.Errorf("an endpoint took %d of 12 streams, over the stretched load bound: %v", n, seen)
		}
	}
}

func TestInferenceReplicasAgree(t *testing.T) {
	addrs := startSims(t, 8, sim.Config{})
	a := inferProxy(t, addrs, "{endpointHeader: true}", "")
	b := inferProxy(t, addrs, "{endpointHeader: true}", "")
	c := plainClient()
	spread := map[string]bool{}
	for i := range 24 {
		body := completion("sim-model", "", textOf(fmt.Sprint("new prefix ", i), 1500))
		ra := postTo(t, c, engines()[0].url(a, "/v1/completions"), body)
		rb := postTo(t, c, engines()[0].url(b, "/v1/completions"), body)
		if ra.endpoint == "" || ra.endpoint != rb.endpoint {
			t.Fatalf("prompt %d: replica a picked %q, b picked %q", i, ra.endpoint, rb.endpoint)
		}
		spread[ra.endpoint] = true
	}
	if len(spread) < 3 {
		t.Errorf("24 new prefixes landed on only %d endpoints", len(spread))
	}
}

// Every stream cancelled mid-way must release its in-flight request and
// tokens exactly once, on both engines.
func TestInferenceExactlyOnceOnCancel(t *testing.T) {
	addrs := startSims(t, 2, sim.Config{DecodePerToken: 2 * time.Millisecond, MaxBatch: 64})
	p := inferProxy(t, addrs, "{}", "")
	const total, workers = 1000, 8
	for _, e := range engines()[:2] { // http1 (fasthttp) and h2c (net/http)
		t.Run(e.name, func(t *testing.T) {
			c := e.client()
			url := e.url(p, "/v1/completions")
			var next atomic.Int64
			var wg sync.WaitGroup
			var failed atomic.Int64
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= total/2 {
						ctx, cancel := context.WithCancel(context.Background())
						req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(streaming(textOf(fmt.Sprint(rand.IntN(50)), 600), 200)))
						resp, err := c.Do(req)
						if err != nil {
							failed.Add(1)
							cancel()
							continue
						}
						_, _ = bufio.NewReader(resp.Body).ReadString('\n')
						cancel()
						resp.Body.Close()
					}
				}()
			}
			wg.Wait()
			if f := failed.Load(); f > 0 {
				t.Errorf("%d requests failed before the stream began", f)
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		busy := ""
		for _, e := range p.infer.get("llm").endpoints().states {
			if n, tok := e.Inflight(); n != 0 || tok != 0 {
				busy += fmt.Sprintf(" %s=%d/%d", e.Addr, n, tok)
			}
		}
		if busy == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("in-flight counters did not return to 0:%s", busy)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var n uint64
	for _, r := range pick.Reasons {
		n += picks(p, r)
	}
	if n != total {
		t.Errorf("%d picks, want %d", n, total)
	}
}

// fakeServer answers /metrics with a settable page (or a status, or a hang)
// and echoes every other request's body.
type fakeServer struct {
	page   atomic.Pointer[string]
	status atomic.Int32 // non-zero: /metrics answers this status
	hang   atomic.Bool
}

func (f *fakeServer) setLoad(waiting int, kv float64) {
	s := fmt.Sprintf("vllm:num_requests_waiting %d\nvllm:kv_cache_usage_perc %g\n", waiting, kv)
	f.page.Store(&s)
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/metrics" {
		if f.hang.Load() {
			<-r.Context().Done()
			return
		}
		if s := f.status.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		_, _ = io.WriteString(w, *f.page.Load())
		return
	}
	b, err := io.ReadAll(r.Body) // whole body first: net/http/1 is not full duplex
	if err != nil {
		w.WriteHeader(400)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(b)
}

func fakes(t *testing.T, n int) ([]*fakeServer, []string) {
	fs := make([]*fakeServer, n)
	addrs := make([]string, n)
	for i := range fs {
		fs[i] = &fakeServer{}
		fs[i].setLoad(0, 0.1)
		addrs[i] = backend(t, fs[i])
	}
	return fs, addrs
}

// waitFor polls cond every 5ms for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func scrapedAtLeastOnce(p *Proxy) bool {
	for _, e := range p.infer.get("llm").endpoints().states {
		if e.Scraped().At == 0 {
			return false
		}
	}
	return true
}

func TestInferenceSaturation(t *testing.T) {
	fs, addrs := fakes(t, 2)
	for _, f := range fs {
		f.setLoad(0, 0.95)
	}
	p := inferProxy(t, addrs, `{scrapeInterval: 100ms, queueTimeout: 1s, objectives: [{name: batch, priority: -1}, {name: chat, priority: 5}]}`, "")
	c := plainClient()
	url := engines()[0].url(p, "/v1/completions")
	waitFor(t, "the first scrape", func() bool { return scrapedAtLeastOnce(p) })
	body := completion("m", "", textOf("x", 500))

	a := postTo(t, c, url, body, objectiveHeader, "batch")
	if a.status != 429 || a.header.Get("Retry-After") == "" || a.header.Get("x-should-retry") != "true" {
		t.Fatalf("negative priority: %d %v %s; want 429 with Retry-After and x-should-retry", a.status, a.header, a.body)
	}
	if a := postTo(t, c, url, body); a.status != 503 || !bytes.Contains(a.body, []byte("queue_timeout")) {
		t.Fatalf("priority 0 after the queue timeout: %d %s; want 503 queue_timeout", a.status, a.body)
	}

	// A queued request is served once an endpoint frees up.
	done := make(chan answer, 1)
	go func() { done <- postTo(t, c, url, body, objectiveHeader, "chat") }()
	q := &p.infer.get("llm").q
	waitFor(t, "the request to queue", func() bool { return q.waiting() == 1 })
	fs[1].setLoad(0, 0.2)
	if a := <-done; a.status != 200 || string(a.body) != body {
		t.Fatalf("queued request: %d, %d bytes of %d: %q", a.status, len(a.body), len(body), a.body[max(0, len(a.body)-80):])
	}
}

func TestInferenceQueueOrder(t *testing.T) {
	var q waitQueue
	for i, prio := range []int{0, 5, 0, 5, -1} {
		heapPush(&q, &waiter{prio: prio, seq: uint64(i), ch: make(chan struct{}, 1), at: -1})
	}
	var got []uint64
	for q.waiting() > 0 {
		got = append(got, popFirst(&q).seq)
	}
	if fmt.Sprint(got) != "[1 3 0 2 4]" {
		t.Errorf("wake order %v, want priority then arrival [1 3 0 2 4]", got)
	}
}

func TestInferenceStaleMetricsIgnored(t *testing.T) {
	fs, addrs := fakes(t, 1)
	fs[0].setLoad(100, 0.99)
	p := inferProxy(t, addrs, `{scrapeInterval: 100ms, objectives: [{name: batch, priority: -1}]}`, "")
	c := plainClient()
	url := engines()[0].url(p, "/v1/completions")
	waitFor(t, "the first scrape", func() bool { return scrapedAtLeastOnce(p) })
	body := completion("m", "", "hello")
	if a := postTo(t, c, url, body, objectiveHeader, "batch"); a.status != 429 {
		t.Fatalf("fresh saturated metrics: %d, want 429", a.status)
	}
	fs[0].hang.Store(true) // scrapes stop landing; the old figures go stale
	waitFor(t, "stale figures to be ignored", func() bool {
		return postTo(t, c, url, body, objectiveHeader, "batch").status == 200
	})
}

func TestInferenceScrapeFailureMarksSuspect(t *testing.T) {
	fs, addrs := fakes(t, 2)
	fs[0].status.Store(500)
	p := inferProxy(t, addrs, `{scrapeInterval: 10ms, endpointHeader: true}`, "")
	c := plainClient()
	url := engines()[0].url(p, "/v1/completions")
	bad := p.infer.get("llm").endpoints().states[0]
	waitFor(t, "the endpoint to be suspect", bad.Suspect)
	for i := range 20 {
		if a := postTo(t, c, url, completion("m", "", textOf(fmt.Sprint(i), 300))); a.endpoint != addrs[1] {
			t.Fatalf("request %d went to %s, want the healthy %s", i, a.endpoint, addrs[1])
		}
	}
	if !strings.Contains(scrapeAdmin(t, p), `kvgate_endpoint_suspect{endpoint="`+addrs[0]+`",pool="llm"} 1`) {
		t.Error("/metrics does not show the suspect endpoint")
	}
	fs[0].status.Store(0)
	waitFor(t, "the endpoint to recover", func() bool { return !bad.Suspect() })
}

// Bodies are forwarded byte for byte: invalid JSON (routed by the fallback),
// and valid JSON longer than maxPromptBytes, with and without a length.
func TestInferenceBodyForwardedUntouched(t *testing.T) {
	_, addrs := fakes(t, 2)
	p := inferProxy(t, addrs, `{maxPromptBytes: 1024}`, "")
	big := completion("m", "", textOf("long", 300<<10))
	bodies := []string{"not json {{{ at all", "{\"model\": \"m\", \"prompt\": \"trunc", big, "", "[1,2,3]"}
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			c := e.client()
			url := e.url(p, "/v1/completions")
			for i, b := range bodies {
				a := postTo(t, c, url, b)
				if a.status != 200 || string(a.body) != b {
					t.Fatalf("body %d: %d, echoed %d bytes of %d", i, a.status, len(a.body), len(b))
				}
				// Unknown length (chunked / no content-length).
				req, _ := http.NewRequest("POST", url, io.MultiReader(strings.NewReader(b)))
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(got) != b {
					t.Fatalf("streamed body %d: echoed %d bytes of %d", i, len(got), len(b))
				}
			}
		})
	}
	if picks(p, pick.ReasonFallback) == 0 {
		t.Error("invalid JSON was not routed by the fallback")
	}
}

// A prompt longer than maxPromptBytes is hashed only up to that limit, but
// the index ages the chosen endpoint by the whole body (its length known),
// as the server caches the whole prompt.
func TestInferenceLongPromptAgesIndex(t *testing.T) {
	_, addrs := fakes(t, 1)
	p := inferProxy(t, addrs, `{maxPromptBytes: 1024}`, "")
	body := completion("m", "", textOf("long", 200<<10))
	e := engines()[0]
	c := e.client()
	defer c.CloseIdleConnections()
	if a := postTo(t, c, e.url(p, "/v1/completions"), body); a.status != 200 {
		t.Fatalf("status %d", a.status)
	}
	entries, _ := p.infer.get("llm").picks().Index().Stats()
	if want := len(body)/64 - 1024/64; entries < want {
		t.Errorf("index holds %d entries after a %d-byte prompt hashed to 1024 bytes, want at least %d", entries, len(body), want)
	}
}

// Every balancer, picker and scorer name configuration accepts (package
// pick's registry) survives the translation into pick.Options and builds the
// pool's picking.
func TestPickOptionsBuildEveryName(t *testing.T) {
	var pools []config.Pool
	for _, b := range pick.BalancerNames() {
		pools = append(pools, config.Pool{Name: "b-" + b, Balancer: b, Endpoints: []string{"127.0.0.1:1"}})
	}
	for _, name := range pick.PresetNames() {
		pools = append(pools, config.Pool{Name: "p-" + name, Endpoints: []string{"127.0.0.1:1"}, Inference: &config.Inference{Picker: name}})
	}
	for _, name := range pick.Names(pick.KindScorer) {
		pools = append(pools, config.Pool{Name: "s-" + name, Endpoints: []string{"127.0.0.1:1"},
			Inference: &config.Inference{Scorers: []config.ScorerWeight{{Name: name, Weight: 1}}}})
	}
	c := &config.Config{Listeners: []config.Listener{{Name: "l", Address: "127.0.0.1:0"}}, Pools: pools}
	config.Default(c)
	if err := config.Validate(c); err != nil {
		t.Fatal(err)
	}
	for i := range c.Pools {
		if _, err := pick.NewPool(pickOptions(&c.Pools[i])); err != nil {
			t.Errorf("pool %s: %v", c.Pools[i].Name, err)
		}
	}
}

// heapPush and popFirst drive the queue's ordering directly.
func heapPush(q *waitQueue, w *waiter) {
	q.mu.Lock()
	heap.Push(&q.h, w)
	q.n.Store(int64(len(q.h)))
	q.mu.Unlock()
}

func popFirst(q *waitQueue) *waiter {
	q.mu.Lock()
	defer q.mu.Unlock()
	w := heap.Pop(&q.h).(*waiter)
	q.n.Store(int64(len(q.h)))
	return w
}
