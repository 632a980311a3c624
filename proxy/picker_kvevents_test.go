package proxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kvgate/kvgate/openai"
	"github.com/kvgate/kvgate/pick"
	"github.com/kvgate/kvgate/sim"
)

// freePort returns a TCP port free on host now.
func freePort(t *testing.T, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Skipf("no loopback address %s: %v", host, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestPreciseRoutesToTheRealHolder runs two simulators publishing KV events
// on their own loopback addresses (so one kvEvents port serves both), fills
// the second one's cache with requests that bypass kvgate, and checks that
// precise mode sends those prompts to it: the approximate index has never
// seen them, so without KV events placement would split them.
func TestPreciseRoutesToTheRealHolder(t *testing.T) {
	hosts := []string{"127.0.0.2", "127.0.0.3"}
	pub, rep := freePort(t, hosts[0]), freePort(t, hosts[0])
	addrs := make([]string, len(hosts))
	for i, h := range hosts {
		cfg := sim.Config{TimeScale: 0.001, KVEvents: sim.KVEventsConfig{
			Endpoint: fmt.Sprintf("tcp://%s:%d", h, pub), Replay: fmt.Sprintf("tcp://%s:%d", h, rep)}}
		r, err := sim.Start(context.Background(), h+":0", cfg)
		if err != nil {
			t.Skipf("port taken meanwhile: %v", err)
		}
		t.Cleanup(func() { _ = r.Close() })
		addrs[i] = r.Addr
	}
	p := inferProxy(t, addrs, fmt.Sprintf(`{endpointHeader: true, scrapeInterval: 20ms, kvEvents: {endpoint: "%d", replayEndpoint: "%d"}}`, pub, rep), "")
	holder := addrs[1]
	prompts := make([]string, 8)
	for i := range prompts {
		prompts[i] = textOf(fmt.Sprintf("tenant %d shared context", i), 4096)
		b := postTo(t, http.DefaultClient, "http://"+holder+"/v1/completions", completion("sim-model", "", prompts[i]))
		if b.status != 200 {
			t.Fatalf("direct request: %d %s", b.status, b.body)
		}
	}
	ip := p.infer.get("llm")
	x := ip.picks().Tokens()
	for i := 0; ; i++ {
		if s := x.Lookup(holder); s >= 0 && x.Stats(s).Blocks >= 8*4096/64 && x.Live(s, time.Now().UnixNano()) &&
			x.Live(x.Lookup(addrs[0]), time.Now().UnixNano()) {
			break
		}
		if i > 2000 {
			t.Fatalf("the holder's events never reached kvgate: %+v", x.Stats(x.Lookup(holder)))
		}
		time.Sleep(5 * time.Millisecond)
	}
	c := plainClient()
	url := engines()[0].url(p, "/v1/completions")
	for i, pr := range prompts {
		a := postTo(t, c, url, completion("sim-model", "", pr+" and a new question "+fmt.Sprint(i)))
		if a.status != 200 {
			t.Fatalf("via kvgate: %d %s", a.status, a.body)
		}
		if a.endpoint != holder {
			t.Fatalf("prompt %d went to %s; the KV events say %s holds it", i, a.endpoint, holder)
		}
		if a.cached < 4000/4 {
			t.Fatalf("prompt %d: cached_tokens %d, want the shared context", i, a.cached)
		}
	}
	if st := ip.kv.Load().tok.Stats(); st.Misses != uint64(len(prompts)) || st.Failures != 0 {
		t.Fatalf("tokenizer stats %+v", st)
	}
	m := scrapeAdmin(t, p)
	for _, want := range []string{
		`kvgate_kv_events_live{endpoint="` + holder + `",pool="llm"} 1`,
		`kvgate_kv_events_lost_total{endpoint="` + holder + `",pool="llm"} 0`,
		fmt.Sprintf(`kvgate_tokenize_calls_total{pool="llm"} %d`, len(prompts)),
		`kvgate_kv_events_blocks{endpoint="` + holder + `",pool="llm"}`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	lint(t, p)
}

// preciseSim starts one simulator publishing KV events on 127.0.0.2 with
// cfg (TimeScale and KVEvents set here) and kvgate in front of it with the
// kvEvents options opts (inside the braces, after endpoint), and publishes
// until kvgate has seen the block size, which tokenizing needs.
func preciseSim(t *testing.T, cfg sim.Config, opts string) (*sim.Running, *Proxy, *infPool) {
	t.Helper()
	host := "127.0.0.2"
	pub := freePort(t, host)
	cfg.TimeScale = 0.001
	cfg.KVEvents = sim.KVEventsConfig{Endpoint: fmt.Sprintf("tcp://%s:%d", host, pub)}
	r, err := sim.Start(context.Background(), host+":0", cfg)
	if err != nil {
		t.Skipf("port taken meanwhile: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	p := inferProxy(t, []string{r.Addr}, fmt.Sprintf(`{scrapeInterval: 20ms, kvEvents: {endpoint: "%d"%s}}`, pub, opts), "")
	ip := p.infer.get("llm")
	for i := 0; ip.picks().Tokens().BlockSize() == 0; i++ {
		if i > 400 {
			t.Fatal("no KV event reached kvgate")
		}
		_ = postTo(t, http.DefaultClient, "http://"+r.Addr+"/v1/completions", completion("sim-model", "", textOf(fmt.Sprint("warm", i), 256)))
		time.Sleep(5 * time.Millisecond)
	}
	return r, p, ip
}

// TestPreciseSlowTokenizerFallsBack: a tokenizer slower than
// tokenizeTimeout costs a request that much and no more; it is picked
// approximately and served.
func TestPreciseSlowTokenizerFallsBack(t *testing.T) {
	_, p, ip := preciseSim(t, sim.Config{TokenizeDelay: time.Minute}, ", tokenizeTimeout: 30ms")
	url := engines()[0].url(p, "/v1/completions")
	for i := range 3 {
		a := postTo(t, plainClient(), url, completion("sim-model", "", textOf(fmt.Sprint("slow", i), 1024)))
		if a.status != 200 {
			t.Fatalf("request %d: %d %s", i, a.status, a.body)
		}
	}
	if st := ip.kv.Load().tok.Stats(); st.Failures != 3 {
		t.Fatalf("tokenizer stats %+v: want 3 timeouts", st)
	}
}

// TestPreciseTokenizeCacheHitAllocs: a prompt whose token ids the tokenize
// cache holds is matched without an allocation of kvgate's own (the base
// URL of the tokenize call is built with the endpoint, not per request).
func TestPreciseTokenizeCacheHitAllocs(t *testing.T) {
	_, p, ip := preciseSim(t, sim.Config{}, "")
	body := completion("sim-model", "", textOf("cached prompt", 1024))
	if a := postTo(t, plainClient(), engines()[0].url(p, "/v1/completions"), body); a.status != 200 {
		t.Fatalf("via kvgate: %d %s", a.status, a.body)
	}
	kv := ip.kv.Load()
	if st := kv.tok.Stats(); st.Misses != 1 {
		t.Fatalf("tokenizer stats %+v, want the one call that fills the cache", st)
	}
	x := &Exchange{ctx: context.Background(), path: "/v1/completions", bodyLen: int64(len(body))}
	sc := &inferScratch{body: []byte(body)}
	if err := openai.Extract(x.path, sc.body, &sc.prompt); err != nil {
		t.Fatal(err)
	}
	var req pick.PickRequest
	promptRequest(&req, &sc.prompt, ip.cfg.Load().BlockSize)
	kv.tokenize(x, ip, sc, &req) // sizes req.TokenBlocks
	if len(req.TokenBlocks) == 0 {
		t.Fatal("no token blocks from the cached tokens")
	}
	if n := testing.AllocsPerRun(100, func() { kv.tokenize(x, ip, sc, &req) }); n != 0 {
		t.Fatalf("%v allocations per cached tokenize, want 0", n)
	}
	if st := kv.tok.Stats(); st.Misses != 1 || st.Hits < 100 {
		t.Fatalf("tokenizer stats %+v, want every later call a cache hit", st)
	}
}
