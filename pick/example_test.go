package pick_test

import (
	"fmt"
	"strings"

	"github.com/kvgate/kvgate/cache"
	"github.com/kvgate/kvgate/pick"
)

// A pool places a new prompt with consistent hashing, then sends the next
// turn of the same conversation to the endpoint that now holds its prefix.
func ExamplePool_Pick() {
	pool, _ := pick.NewPool(pick.Options{Preset: "prefix-affinity", QueueThreshold: 5})
	eps := []*pick.Endpoint{pool.Endpoint("10.0.0.1:8000"), pool.Endpoint("10.0.0.2:8000"), pool.Endpoint("10.0.0.3:8000")}

	send := func(text string) pick.Decision {
		pc := pick.AcquirePickContext()
		defer pick.ReleasePickContext(pc)
		seed := cache.Seed("llama", "")
		pc.Req = pick.PickRequest{HasPrompt: true, Seed: seed, Model: "llama", PromptTokens: len(text) / 4,
			Blocks: cache.Blocks(seed, []byte(text), 0, pc.Req.Blocks)}
		d := pool.Pick(pc, eps)
		d.Endpoint.End(d.Tokens) // the proxy does this when the stream ends
		return d
	}
	turn1 := strings.Repeat("system: be brief. user: hello. ", 20)
	a := send(turn1)
	b := send(turn1 + "assistant: hi. user: more?")
	fmt.Println(a.Reason, b.Reason, a.Endpoint == b.Endpoint, b.Matched == len(cache.Blocks(0, []byte(turn1), 0, nil)))
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
