package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/sim"
)

// Precise-mode scenarios: kvgate's prefix-affinity and latency pickers
// reading the simulators' KV events (inference.kvEvents) and tokenizing
// prompts on their /tokenize, kept apart from StandardScenarios so that
// replays choose them explicitly (benchmarks/replay --precise).
const (
	PrefixPrecise          = "kvgate prefix-affinity, kv events"
	PrefixPreciseReplicas  = "kvgate prefix-affinity, kv events, replicas"
	LatencyPrecise         = "kvgate latency, kv events"
	LatencyPreciseReplicas = "kvgate latency, kv events, replicas"
)

// kvOffset and kvReplayOffset place each simulator's KV event PUB and
// replay sockets at its HTTP port plus these, the "+N" endpoint form.
const (
	kvOffset       = 1000
	kvReplayOffset = 1001
)

// PreciseScenarios returns the precise-mode scenarios: one kvgate, and
// replicas instances when replicas > 1, for each of prefix-affinity and
// latency.
func PreciseScenarios(replicas int) []Scenario {
	kv := func() *config.KVEvents {
		return &config.KVEvents{Endpoint: "+" + strconv.Itoa(kvOffset), ReplayEndpoint: "+" + strconv.Itoa(kvReplayOffset)}
	}
	var sc []Scenario
	for _, p := range []struct{ picker, one, many string }{
		{"prefix-affinity", PrefixPrecise, PrefixPreciseReplicas},
		{"latency", LatencyPrecise, LatencyPreciseReplicas},
	} {
		sc = append(sc, Scenario{Name: p.one,
			Note:      "picker " + p.picker + " with inference.kvEvents: each simulator's KV events (ZMQ, vLLM's wire format) and /tokenize give the real cached prefix",
			Inference: config.Inference{Picker: p.picker, KVEvents: kv()}})
		if replicas > 1 {
			sc = append(sc, Scenario{Name: p.many, Replicas: replicas,
				Note:      strconv.Itoa(replicas) + " kvgate instances with kvEvents (picker " + p.picker + "), each subscribed to every simulator; the client spreads requests round-robin",
				Inference: config.Inference{Picker: p.picker, KVEvents: kv()}})
		}
	}
	return sc
}

// startSimsFor starts the simulators of a scenario: publishing KV events
// at their port plus kvOffset (and replay at kvReplayOffset) when the
// scenario reads them.
func startSimsFor(ctx context.Context, n int, cfg sim.Config, sc Scenario) ([]*sim.Running, error) {
	if sc.Inference.KVEvents == nil {
		return startSims(ctx, n, cfg)
	}
	var out []*sim.Running
	fail := func(err error) ([]*sim.Running, error) {
		for _, r := range out {
			_ = r.Close()
		}
		return nil, err
	}
	for range n {
		var r *sim.Running
		err := fmt.Errorf("no free ports")
		for range 50 {
			// Below Linux's ephemeral range (32768 and up), so that the
			// replay's own client connections never hold these ports.
			port := 10000 + rand.IntN(20000)
			if !portsFree(port, port+kvOffset, port+kvReplayOffset) {
				continue
			}
			c := cfg
			c.KVEvents = sim.KVEventsConfig{
				Endpoint: "tcp://127.0.0.1:" + strconv.Itoa(port+kvOffset),
				Replay:   "tcp://127.0.0.1:" + strconv.Itoa(port+kvReplayOffset),
			}
			if r, err = sim.Start(ctx, "127.0.0.1:"+strconv.Itoa(port), c); err == nil {
				break
			}
		}
		if r == nil {
			return fail(fmt.Errorf("loadgen: start a simulator with KV events: %v", err))
		}
		out = append(out, r)
	}
	return out, nil
}

// portsFree reports whether every port can be listened on now.
func portsFree(ports ...int) bool {
	for _, p := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}
