package cache_test

import (
	"fmt"
	"strings"

	"github.com/kvgate/kvgate/cache"
)

func ExampleBlocks() {
	text := []byte(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 5)) // 225 bytes
	seed := cache.Seed("llama-3-8b", "")
	blocks := cache.Blocks(seed, text, 64, nil) // 64-byte blocks, about 16 tokens
	fmt.Println(len(blocks), "full blocks; the last 33 bytes are not hashed")

	// Another salt shares nothing with the first chain.
	salted := cache.Blocks(cache.Seed("llama-3-8b", "tenant-b"), text, 64, nil)
	fmt.Println("first block shared across salts:", blocks[0] == salted[0])
	// Output:
	// 3 full blocks; the last 33 bytes are not hashed
	// first block shared across salts: false
}

func ExampleIndex() {
	idx := cache.NewIndex(16384) // blocks per endpoint until its server reports its own
	a := idx.Add("10.0.0.11:8000")
	b := idx.Add("10.0.0.12:8000")
	// The server reported num_gpu_blocks=1000 with 16-token blocks.
	idx.SetCapacity("10.0.0.12:8000", cache.CapacityFromServer(1000, 16, 64))

	seed := cache.Seed("llama-3-8b", "")
	system := strings.Repeat("You are a helpful assistant. ", 10) // 290 bytes: 4 blocks
	first := cache.Blocks(seed, []byte(system+"user: hi"), 64, nil)
	idx.Record("10.0.0.11:8000", first) // the picker sent the first request to a

	next := cache.Blocks(seed, []byte(system+"user: tell me more about it"), 64, nil)
	matched := idx.Match(next, nil) // reuse the slice across requests
	fmt.Printf("a: %d/%d blocks, b: %d/%d blocks\n", matched[a], len(next), matched[b], len(next))
	// Output: a: 4/4 blocks, b: 0/4 blocks
}

func ExamplePlace() {
	endpoints := []string{"10.0.0.11:8000", "10.0.0.12:8000", "10.0.0.13:8000"}
	seed := cache.Seed("llama-3-8b", "")
	blocks := cache.Blocks(seed, []byte(strings.Repeat("a brand new conversation ", 20)), 64, nil)
	key := cache.PlacementKey(seed, blocks, cache.PlacementDepth)

	const bound = 1.25 // no endpoint takes a new prefix above 1.25 × the mean load
	home := cache.Place(key, endpoints, nil, bound)
	// Every replica computes the same home, whatever order it lists endpoints in.
	reversed := []string{endpoints[2], endpoints[1], endpoints[0]}
	fmt.Println("replicas agree:", reversed[cache.Place(key, reversed, nil, bound)] == endpoints[home])

	// When home is far above the mean load, the key spills to another endpoint.
	loads := []int{0, 0, 0}
	loads[home] = 10
	fmt.Println("spilled:", cache.Place(key, endpoints, loads, bound) != home)
	// Output:
	// replicas agree: true
	// spilled: true
}
