package router_test

import (
	"fmt"
	"strings"

	"github.com/kvgate/kvgate/cache"
	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/router"
)

// A pool places a new prompt with consistent hashing, then sends the next
// turn of the same conversation to the endpoint that now holds its prefix.
func ExamplePickerPool_Pick() {
	in := &config.Inference{Picker: "prefix-affinity"}
	config.Default(&config.Config{Pools: []config.Pool{{Inference: in}}})
	pool, _ := router.NewPickerPool("llm", in)
	eps := []*router.Endpoint{pool.Endpoint("10.0.0.1:8000"), pool.Endpoint("10.0.0.2:8000"), pool.Endpoint("10.0.0.3:8000")}

	send := func(text string) router.Decision {
		pc := router.AcquirePickContext()
		defer router.ReleasePickContext(pc)
		seed := cache.Seed("llama", "")
		pc.Req = router.PickRequest{HasPrompt: true, Seed: seed, Model: "llama", PromptTokens: len(text) / 4,
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
