package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvgate/kvgate/sim"
)

// slowable serves a simulator and, while slow is set, holds every model
// request for delay before the simulator sees it: a server that turned slow
// (a noisy neighbour, a throttled GPU). Metrics scrapes are not delayed.
type slowable struct {
	h     http.Handler
	slow  atomic.Bool
	delay time.Duration
}

func (s *slowable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.slow.Load() && strings.HasPrefix(r.URL.Path, "/v1/") {
		time.Sleep(s.delay)
	}
	s.h.ServeHTTP(w, r)
}

// End to end: kvgate with the latency preset learns from the replies it
// streams back that one simulator turned slow, and sends it nothing within
// a few dozen requests. (Regaining traffic after recovery takes the model's
// half-life; pick's TestLatencySlowEndpointLosesAndRegainsTraffic covers it
// with a clock it controls.)
func TestLatencyPresetAvoidsSlowEndpoint(t *testing.T) {
	cfg := sim.Config{PrefillBase: 20 * time.Millisecond, DecodePerToken: time.Millisecond}
	var sims []*slowable
	var addrs []string
	for range 3 {
		s := &slowable{h: sim.New(cfg).Handler(), delay: 150 * time.Millisecond}
		sims = append(sims, s)
		addrs = append(addrs, backend(t, s))
	}
	p := inferProxy(t, addrs, "{picker: latency, endpointHeader: true}", "")
	c := plainClient()
	url := engines()[0].url(p, "/v1/completions")
	seq := 0
	// send sends n new prompts one after another and counts, among the
	// last tail, those that went to the first simulator.
	send := func(n, tail int) int {
		got := 0
		for i := range n {
			seq++
			a := postTo(t, c, url, streaming(textOf(fmt.Sprint("prompt ", seq), 1024), 1))
			if a.status != 200 {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			if i >= n-tail && a.endpoint == addrs[0] {
				got++
			}
		}
		return got
	}
	if got := send(30, 30); got == 0 {
		t.Fatalf("the first simulator got none of 30 requests while healthy")
	}
	sims[0].slow.Store(true)
	if got := send(40, 20); got != 0 {
		t.Errorf("the slow simulator got %d of the last 20 of 40 requests", got)
	}
	for _, ep := range p.infer.get("llm").endpoints().states {
		m := ep.CostModel()
		t.Logf("%s: %+v", ep.Addr, m)
		if ep.Addr == addrs[0] && (m.Samples == 0 || m.Base+m.PerKiloToken*0.5 < 0.05) {
			t.Errorf("the slow simulator's learned model %+v does not show its 150 ms delay", m)
		}
	}
	// An operator sees the same on the status page's JSON, per model too.
	for _, pv := range p.Status().Pools {
		for _, ev := range pv.Endpoints {
			if ev.Address != addrs[0] {
				continue
			}
			c := ev.Cost
			if c == nil || c.Samples == 0 || c.BaseMs+c.MsPerKiloToken/2 < 50 || c.Models["sim-model"].Samples == 0 {
				t.Errorf("status shows the slow simulator's cost model as %+v, want its learned 150 ms delay, with a sim-model entry", c)
			}
		}
	}
}
