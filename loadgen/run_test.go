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
		// zmq4 v0.17's PUB sockets (the simulators' KV events) never stop their writer.
		goleak.IgnoreAnyFunction("github.com/go-zeromq/zmq4.(*pubMWriter).run"),
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
		PreciseScenarios(0)[0],
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
	if len(scs) != 12 || scs[len(scs)-1].Replicas != 4 || scs[len(scs)-4].Replicas != 4 {
		t.Fatalf("got %d scenarios", len(scs))
	}
	for _, sc := range scs {
		if _, err := sc.Config([]string{"127.0.0.1:1", "127.0.0.1:2"}); err != nil {
			t.Errorf("%s: %v", sc.Name, err)
		}
	}
	if got := StandardScenarios(0); len(got) != 8 {
		t.Fatalf("replicas 0: %d scenarios, want 8", len(got))
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

func TestMedianReport(t *testing.T) {
	run := func(hit float64, p99 time.Duration, failed int, share float64) Report {
		return Report{Scenario: "s", Requests: 10, HitRate: hit, TTFTP50: p99 / 10, TTFTP99: p99, Failed: failed,
			Share: []float64{share, 1 - share}, MaxMeanShare: 2 * max(share, 1-share)}
	}
	tests := []struct {
		name             string
		runs             []Report
		hit, lo, hi      float64
		p99              time.Duration
		failed, wantRuns int
		share            float64
	}{
		{"one run as it is", []Report{run(0.3, 9*time.Second, 1, 0.6)}, 0.3, 0, 0, 9 * time.Second, 1, 0, 0.6},
		{"three runs: each figure its own median", []Report{run(0.28, 7*time.Second, 0, 0.5), run(0.30, 9*time.Second, 1, 0.7), run(0.29, 11*time.Second, 2, 0.6)},
			0.29, 0.28, 0.30, 9 * time.Second, 3, 3, 0.6},
		{"even count takes the lower middle", []Report{run(0.4, 4*time.Second, 0, 0.5), run(0.1, 1*time.Second, 0, 0.5), run(0.3, 3*time.Second, 0, 0.5), run(0.2, 2*time.Second, 0, 0.5)},
			0.2, 0.1, 0.4, 2 * time.Second, 0, 4, 0.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := MedianReport(tc.runs)
			if r.HitRate != tc.hit || r.HitRateMin != tc.lo || r.HitRateMax != tc.hi || r.TTFTP99 != tc.p99 ||
				r.TTFTP50 != tc.p99/10 || r.Failed != tc.failed || r.Runs != tc.wantRuns || r.Share[0] != tc.share {
				t.Fatalf("MedianReport = %+v", r)
			}
		})
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, []Report{MedianReport(tests[1].runs)}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "| 29.0% (28.0-30.0) |") {
		t.Fatalf("markdown does not show the range of hit rates:\n%s", md.String())
	}
}

// Precise mode runs both kvgate presets that read the prefix index, once
// and replicated.
func TestPreciseScenariosCoverBothPresets(t *testing.T) {
	want := map[string]struct {
		picker   string
		replicas int
	}{
		PrefixPrecise: {"prefix-affinity", 0}, PrefixPreciseReplicas: {"prefix-affinity", 4},
		LatencyPrecise: {"latency", 0}, LatencyPreciseReplicas: {"latency", 4},
	}
	got := PreciseScenarios(4)
	if len(got) != len(want) {
		t.Fatalf("%d scenarios, want %d", len(got), len(want))
	}
	for _, sc := range got {
		w, ok := want[sc.Name]
		if !ok || sc.Inference.Picker != w.picker || sc.Replicas != w.replicas || sc.Inference.KVEvents == nil {
			t.Errorf("scenario %q: picker %q, %d replicas, kvEvents %v; want %+v", sc.Name, sc.Inference.Picker, sc.Replicas, sc.Inference.KVEvents, w)
		}
	}
	if n := len(PreciseScenarios(1)); n != 2 {
		t.Errorf("one replica: %d scenarios, want 2 (no replicated ones)", n)
	}
}
