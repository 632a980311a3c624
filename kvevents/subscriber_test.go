package kvevents

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kvgate/kvgate/cache"
	"github.com/kvgate/kvgate/sim"
)

// startSim starts a simulator publishing KV events (with a replay socket
// when replay is set).
func startSim(t *testing.T, blocks int, replay bool) *sim.Running {
	t.Helper()
	cfg := sim.Config{TimeScale: 0.001, NumGPUBlocks: blocks, DefaultMaxTokens: 1,
		KVEvents: sim.KVEventsConfig{Endpoint: "tcp://127.0.0.1:0", Topic: "kv"}}
	if replay {
		cfg.KVEvents.Replay = "tcp://127.0.0.1:0"
	}
	r, err := sim.Start(context.Background(), "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// follow runs a Subscriber for r into a new index until the test ends.
func follow(t *testing.T, r *sim.Running) (*cache.TokenIndex, int, *Subscriber) {
	t.Helper()
	x := cache.NewTokenIndex(1<<16, 0)
	slot := x.Add("sim")
	s := NewSubscriber(Options{
		Endpoint: r.KVEvents.Endpoint, Replay: r.KVEvents.ReplayEndpoint, Topic: "kv", Name: "sim", Index: x,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		ReplayTimeout: 2 * time.Second, ProbeAfter: 50 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return x, slot, s
}

// prompt returns a distinct prompt of n full blocks.
func prompt(tag string, n int) string {
	p := strings.Repeat(fmt.Sprintf("%-16s", tag), n*sim.BlockChars/16+1)
	return p[:n*sim.BlockChars]
}

func complete(t *testing.T, r *sim.Running, text string) {
	t.Helper()
	body := fmt.Sprintf(`{"prompt":%q,"max_tokens":1}`, text)
	resp, err := http.Post(r.URL+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("completion: %d", resp.StatusCode)
	}
}

// held is how many leading blocks of text the index says slot holds.
func held(x *cache.TokenIndex, slot int, text string) int {
	blocks := cache.TokenBlocks(0, sim.TokenIDs(text), sim.BlockTokens, nil)
	m := x.Match(blocks, nil)
	return m[slot]
}

// eventually polls cond for up to 10 s (a bound, not a timing assertion).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("never: %s", what)
}

func TestSubscriberFollowsSimulator(t *testing.T) {
	r := startSim(t, 4096, true)
	complete(t, r, prompt("before-subscribe", 6)) // history: replayed from 0
	x, slot, s := follow(t, r)
	a := prompt("alpha", 10)
	complete(t, r, a)
	eventually(t, "alpha indexed", func() bool { return held(x, slot, a) == 10 })
	eventually(t, "history indexed", func() bool { return held(x, slot, prompt("before-subscribe", 6)) == 6 })
	// A prompt sharing alpha's first 4 blocks matches 4.
	if got := held(x, slot, a[:4*sim.BlockChars]+prompt("other", 6)); got != 4 {
		t.Fatalf("shared prefix: held %d blocks, want 4", got)
	}
	if !x.Live(slot, time.Now().UnixNano()) {
		t.Fatalf("endpoint not live while its subscriber is in sequence: %+v %+v", s.Stats(), x.Stats(slot))
	}
	if st := s.Stats(); st.DecodeErrors != 0 || st.Lost != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSubscriberReplaysGap(t *testing.T) {
	r := startSim(t, 4096, true)
	x, slot, s := follow(t, r)
	first := prompt("first", 3)
	complete(t, r, first)
	eventually(t, "first indexed", func() bool { return held(x, slot, first) == 3 })
	r.KVEvents.DropNext(2)
	b, c, d := prompt("bravo", 5), prompt("charlie", 5), prompt("delta", 5)
	complete(t, r, b)
	complete(t, r, c)
	complete(t, r, d) // published: shows the gap
	eventually(t, "dropped batches replayed", func() bool {
		return held(x, slot, b) == 5 && held(x, slot, c) == 5 && held(x, slot, d) == 5
	})
	st := s.Stats()
	if st.Gaps+st.Replayed == 0 || st.Replayed < 2 || st.Lost != 0 {
		t.Fatalf("stats %+v: want the gap replayed, nothing lost", st)
	}
	if held(x, slot, first) != 3 {
		t.Fatal("a replay lost earlier state")
	}
}

func TestSubscriberGapWithoutReplayClears(t *testing.T) {
	r := startSim(t, 4096, false)
	x, slot, s := follow(t, r)
	// Without replay, what is published before the subscription reaches
	// the publisher is gone: publish until something arrives.
	first := ""
	for i := 0; first == ""; i++ {
		p := prompt(fmt.Sprint("first", i), 3)
		complete(t, r, p)
		for range 20 {
			if held(x, slot, p) == 3 {
				first = p
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if i > 100 {
			t.Fatal("nothing published reached the subscriber")
		}
	}
	lost0 := s.Stats().Lost
	r.KVEvents.DropNext(1)
	complete(t, r, prompt("lost", 4))
	after := prompt("after", 4)
	complete(t, r, after)
	eventually(t, "after indexed", func() bool { return held(x, slot, after) == 4 })
	if st := s.Stats(); st.Lost-lost0 != 1 {
		t.Fatalf("stats %+v: want 1 lost batch", st)
	}
	if held(x, slot, first) != 0 || held(x, slot, prompt("lost", 4)) != 0 {
		t.Fatal("an unrepairable gap must clear the endpoint's index (it may have missed removals)")
	}
}

func TestSubscriberSeesEvictions(t *testing.T) {
	r := startSim(t, 16, true) // room for two 5-block prompts plus output
	x, slot, _ := follow(t, r)
	a := prompt("evicted", 5)
	complete(t, r, a)
	eventually(t, "a indexed", func() bool { return held(x, slot, a) == 5 })
	for i := range 4 {
		complete(t, r, prompt(fmt.Sprint("filler", i), 5))
	}
	eventually(t, "a evicted", func() bool { return held(x, slot, a) == 0 })
	if got := r.Server.Stats().CachedBlocks; got > 16 {
		t.Fatalf("sim holds %d blocks", got)
	}
}

func TestSubscriberUnreachableIsNotLive(t *testing.T) {
	x := cache.NewTokenIndex(16, 0)
	slot := x.Add("gone")
	s := NewSubscriber(Options{Endpoint: "tcp://127.0.0.1:1", Name: "gone", Index: x,
		MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, ReplayTimeout: 100 * time.Millisecond, ProbeAfter: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	eventually(t, "reconnect attempts", func() bool { return s.Stats().Reconnects >= 3 })
	cancel()
	<-done
	if x.Live(slot, time.Now().UnixNano()) {
		t.Fatal("an endpoint whose publisher cannot be reached is live")
	}
}
