package pick_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/kvgate/kvgate/cache"
	"github.com/kvgate/kvgate/pick"
)

// A pool places a new prompt with consistent hashing, then sends the next
// turn of the same conversation to the endpoint that now holds its prefix.
func ExamplePool_Pick() {
	// The options the proxy passes for an inference pool; package pick has
	// no defaults, so every value is given.
	pool, _ := pick.NewPool(pick.Options{
		Preset: "prefix-affinity", Balancer: "least-request",
		BlockSize: 64, CacheBlocks: 16384, LoadBound: 1.25,
		QueueThreshold: 5, KVThreshold: 0.8, ScrapeInterval: 50 * time.Millisecond,
	})
	eps := []*pick.Endpoint{pool.Endpoint("10.0.0.1:8000"), pool.Endpoint("10.0.0.2:8000"), pool.Endpoint("10.0.0.3:8000")}

	send := func(text string) pick.Decision {
		pc := pick.AcquirePickContext()
		defer pick.ReleasePickContext(pc)
		seed := cache.Seed("llama", "")
		pc.Req = pick.PickRequest{HasPrompt: true, Seed: seed, Model: "llama", PromptTokens: len(text) / 4,
			Blocks: cache.Blocks(seed, []byte(text), 64, pc.Req.Blocks)}
		d := pool.Pick(pc, eps)
		d.Endpoint.End(d.Tokens) // the proxy does this when the stream ends
		return d
	}
	turn1 := strings.Repeat("system: be brief. user: hello. ", 20)
	a := send(turn1)
	b := send(turn1 + "assistant: hi. user: more?")
	fmt.Println(a.Reason, b.Reason, a.Endpoint == b.Endpoint, b.Matched == len(cache.Blocks(0, []byte(turn1), 64, nil)))
	// Output: placement affinity true true
}

// A plain pool balances with its balancer preset; a retry avoids the
// endpoint that failed.
func ExamplePool_Balance() {
	pool, _ := pick.NewPool(pick.Options{Balancer: "round-robin"})
	eps := []*pick.Endpoint{pool.Endpoint("10.0.0.1:8000"), pool.Endpoint("10.0.0.2:8000")}

	pc := pick.AcquirePickContext()
	defer pick.ReleasePickContext(pc)
	first := pool.Balance(pc, eps)
	first.Endpoint.End(0)
	pc.Req.Avoid = first.Endpoint
	retry := pool.Balance(pc, eps)
	retry.Endpoint.End(0)
	fmt.Println(first.Endpoint.Addr, retry.Endpoint.Addr)
	// Output: 10.0.0.1:8000 10.0.0.2:8000
}

// The presets a configuration may name, as the registry declares them.
func ExamplePresets() {
	for _, p := range pick.Presets() {
		var parts []string
		for _, f := range p.Filters {
			parts = append(parts, f.Name)
		}
		line := strings.Join(parts, ", ") + " →"
		for _, s := range p.Scorers {
			line += fmt.Sprintf(" %s %g", s.Plugin.Name, s.Weight)
		}
		if len(p.Scorers) == 0 {
			line += " no scorer"
		}
		extra := ""
		if p.Balancer {
			extra = " (balancer)"
		}
		if p.Plain {
			extra = " (plain)"
		}
		fmt.Printf("%s%s: %s → %s\n", p.Name, extra, line, p.Picker.Name)
	}
	// Output:
	// prefix-affinity: healthy, not-saturated, lora-loadable → prefix 3 queue 2 kv-utilization 2 inflight-requests 0.5 inflight-tokens 0.5 lora 1 → max-score
	// latency: healthy, not-saturated, lora-loadable → prefix 3 queue 2 kv-utilization 2 inflight-requests 0.5 inflight-tokens 0.5 lora 1 → least-ttft
	// least-request (balancer): healthy, not-saturated → inflight-requests 1 → p2c
	// round-robin (balancer): healthy, not-saturated → no scorer → round-robin
	// random: healthy, not-saturated → no scorer → random
	// session: healthy, not-saturated → inflight-requests 1 → session
	// gie (plain): healthy, scraped-not-saturated → prefix 3 queue-minmax 2 kv-utilization 2 → max-score
	// sglang (plain): healthy → no scorer → sglang-cache-aware
}

// The scorers inference.scorers may name, with what each does.
func ExamplePlugins() {
	for _, p := range pick.Plugins() {
		if p.Kind == pick.KindScorer {
			fmt.Printf("%s: %s\n", p.Name, p.Doc)
		}
	}
	// Output:
	// prefix: matched leading prompt blocks / prompt blocks
	// queue: queue depth (scraped when fresh, else in flight), relative to the busiest endpoint
	// queue-minmax: queue depth min-max normalised across the endpoints, as the Inference Extension scores it
	// kv-utilization: 1 - scraped KV-cache utilisation when fresh, else in-flight prompt tokens
	// inflight-requests: proxy-side requests in flight, relative to the busiest endpoint
	// inflight-tokens: proxy-side prompt tokens in flight, relative to the busiest endpoint
	// lora: prefers endpoints running the requested LoRA adapter, then waiting on it, then able to load it
}
