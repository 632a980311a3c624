package loadgen

import (
	"bytes"
	"context"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/sim"
	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines, ignoring fasthttp's background
// sleepers, which end on their own timers after the proxy has shut down.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.init.0.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
	)
}

// tinyOptions replays 3 conversations of 3 turns through 2 fast simulators,
// one request at a time so that each finds the cache its predecessors left.
func tinyOptions() Options {
	cfg := sim.DefaultConfig()
	cfg.TimeScale = 0.001
	cfg.NumGPUBlocks = 1024
	return Options{
		Workload: Synthetic(SyntheticSpec{Conversations: 3, Turns: 3, SystemBlocks: 2, TurnBlocks: 1,
			Stagger: time.Millisecond, Think: 2 * time.Millisecond, Output: 8}),
		TimeScale:   1,
		Simulators:  2,
		Sim:         cfg,
		MaxInFlight: 1,
		Client:      Client{Model: cfg.Model, MaxOutput: 4},
	}
}

func TestRunEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	o := tinyOptions()
	for _, sc := range []Scenario{
		{Name: "rr", Inference: config.Inference{Picker: "round-robin"}, Balancer: "round-robin"},
		{Name: "session", Inference: config.Inference{Picker: "session"}, Session: true},
		{Name: "two replicas", Inference: config.Inference{Picker: "prefix-affinity"}, Replicas: 2},
	} {
		t.Run(sc.Name, func(t *testing.T) {
			calls := 0
			o.Progress = func(done, total int) { calls++ }
			r, err := Run(ctx, o, sc)
			if err != nil {
				t.Fatal(err)
			}
			n := len(o.Workload)
			if r.Requests != n || r.Failed != 0 || calls != n {
				t.Fatalf("requests %d failed %d progress calls %d, want %d, 0, %d (first error %q)", r.Requests, r.Failed, calls, n, n, r.FirstError)
			}
			// One request at a time: every request after the first two finds
			// at least the shared system prompt on whichever server it meets.
			if r.HitRate <= 0 || r.HitRate >= 1 {
				t.Fatalf("hit rate %v, want in (0,1)", r.HitRate)
			}
			// The client's usage chunks and the servers' counters agree.
			if want := r.HitRate * float64(r.PromptTokens); float64(r.CachedTokens) < want-0.5 || float64(r.CachedTokens) > want+0.5 {
				t.Fatalf("usage says %d of %d prompt tokens cached, servers say %.4f", r.CachedTokens, r.PromptTokens, r.HitRate)
			}
			sum := 0.0
			for _, s := range r.Share {
				sum += s
			}
			if len(r.Share) != 2 || sum < 0.999 || sum > 1.001 || r.MaxMeanShare < 1 || r.MaxMeanShare > 2 {
				t.Fatalf("shares %v (max/mean %v) do not describe 2 servers", r.Share, r.MaxMeanShare)
			}
			if r.TTFTP50 <= 0 || r.TTFTP99 < r.TTFTP50 || r.OutputTokensPerSec <= 0 || r.Replicas != max(sc.Replicas, 1) {
				t.Fatalf("implausible report %+v", r)
			}
		})
	}
}

func TestRunSetupErrors(t *testing.T) {
	o := tinyOptions()
	if _, err := Run(context.Background(), o, Scenario{Name: "bad", Inference: config.Inference{Picker: "nearest"}}); err == nil || !strings.Contains(err.Error(), "picker") {
		t.Fatalf("unknown picker: err = %v", err)
	}
	o.Workload = nil
	if _, err := Run(context.Background(), o, Scenario{Name: "empty"}); err == nil {
		t.Fatal("empty workload: no error")
	}
}

func TestStandardScenariosValidate(t *testing.T) {
	scs := StandardScenarios(4)
	if len(scs) != 8 || scs[len(scs)-1].Replicas != 4 {
		t.Fatalf("got %d scenarios", len(scs))
	}
	for _, sc := range scs {
		if _, err := sc.Config([]string{"127.0.0.1:1", "127.0.0.1:2"}); err != nil {
			t.Errorf("%s: %v", sc.Name, err)
		}
	}
	if got := StandardScenarios(0); len(got) != 7 {
		t.Fatalf("replicas 0: %d scenarios, want 7", len(got))
	}
}

func TestWriteReports(t *testing.T) {
	rs := []Report{
		{Scenario: "a<b", Replicas: 1, Requests: 10, HitRate: 0.25, TTFTP50: 3 * time.Millisecond, TTFTP99: 9 * time.Millisecond, Share: []float64{0.5, 0.5}, MaxMeanShare: 1},
		{Scenario: "c", Replicas: 4, Requests: 10, Failed: 1, HitRate: 0.5, Share: []float64{1, 0}, MaxMeanShare: 2},
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, rs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(md.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[2], "| 25.0% | 3 ms | 9 ms |") || !strings.Contains(lines[3], "100% / 0%") {
		t.Fatalf("markdown:\n%s", md.String())
	}
	var svg bytes.Buffer
	if err := WriteSVG(&svg, rs, "t & t"); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&svg)
	rects := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
	}
	if rects != 1+2*len(rs) {
		t.Fatalf("svg has %d rects, want %d (or is not well-formed XML)", rects, 1+2*len(rs))
	}
}
