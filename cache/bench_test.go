package cache

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/kvgate/kvgate/internal/benchcpu"
)

// prefixFixture is a pool of 16 endpoints that have each served 64 prompts of
// 8 KiB behind one shared 2 KiB system prompt, and one more 8 KiB prompt
// whose full prefix endpoint 3 holds, and another one nobody holds yet.
type prefixFixture struct {
	idx    *Index
	seed   uint64
	prompt []byte
	other  []byte
}

func newPrefixFixture(allHoldAll bool) prefixFixture {
	seed := Seed("meta-llama/Llama-3.1-8B-Instruct", "")
	system := strings.Repeat("You are a helpful assistant; follow the policy. ", 43)[:2048]
	r := rand.New(rand.NewPCG(7, 8))
	idx := NewIndex(testCacheBlocks)
	text := func(i int) []byte {
		b := []byte(system)
		for len(b) < 8<<10 {
			b = fmt.Appendf(b, "user %d says %x. ", i, r.Uint64())
		}
		return b[:8<<10]
	}
	var blocks []uint64
	for e := 0; e < 16; e++ {
		ep := fmt.Sprintf("10.0.0.%d:8000", e)
		idx.Add(ep)
		for p := 0; p < 64; p++ {
			blocks = Blocks(seed, text(e*1000+p), testBlockSize, blocks)
			idx.Record(ep, blocks)
		}
	}
	prompt := text(-1)
	blocks = Blocks(seed, prompt, testBlockSize, blocks)
	idx.Record("10.0.0.3:8000", blocks)
	if allHoldAll {
		for e := 0; e < 16; e++ {
			idx.Record(fmt.Sprintf("10.0.0.%d:8000", e), blocks)
		}
	}
	return prefixFixture{idx: idx, seed: seed, prompt: prompt, other: text(-2)}
}

// BenchmarkBlocksMatch is the per-request prefix work: hash an 8 KiB prompt
// (128 blocks) and match it against 16 endpoints. "shared" is the usual case
// (all endpoints hold the 32-block system prompt, one holds the rest);
// "worst" has all 16 endpoints holding all 128 blocks.
func BenchmarkBlocksMatch(b *testing.B) {
	for _, tc := range []struct {
		name string
		all  bool
	}{{"shared-16ep-8KiB", false}, {"worst-16ep-8KiB", true}} {
		b.Run(tc.name, func(b *testing.B) {
			f := newPrefixFixture(tc.all)
			blocks := make([]uint64, 0, 256)
			out := make([]int, 0, 16)
			b.ReportAllocs()
			b.SetBytes(int64(len(f.prompt)))
			clk := benchcpu.Start()
			for b.Loop() {
				blocks = Blocks(f.seed, f.prompt, testBlockSize, blocks)
				out = f.idx.Match(blocks, out)
			}
			clk.Stop(b)
			if out[3] != len(blocks) {
				b.Fatalf("endpoint 3 matched %d of %d blocks", out[3], len(blocks))
			}
		})
	}
}

// BenchmarkMatch8KiB is BenchmarkBlocksMatch without the hashing.
func BenchmarkMatch8KiB(b *testing.B) {
	for _, tc := range []struct {
		name string
		all  bool
	}{{"shared-16ep", false}, {"worst-16ep", true}} {
		b.Run(tc.name, func(b *testing.B) {
			f := newPrefixFixture(tc.all)
			blocks := Blocks(f.seed, f.prompt, testBlockSize, nil)
			out := make([]int, 0, 16)
			b.ReportAllocs()
			clk := benchcpu.Start()
			for b.Loop() {
				out = f.idx.Match(blocks, out)
			}
			clk.Stop(b)
		})
	}
}

func BenchmarkBlocks8KiB(b *testing.B) {
	text := []byte(strings.Repeat("x", 8<<10))
	dst := make([]uint64, 0, 128)
	seed := Seed("m", "")
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	clk := benchcpu.Start()
	for b.Loop() {
		dst = Blocks(seed, text, testBlockSize, dst)
	}
	clk.Stop(b)
}

// BenchmarkRecord8KiB records an 8 KiB prompt (128 blocks, the first 32 a
// system prompt every endpoint holds) on one endpoint of the 16: "same"
// records the same prompt every time (nothing changes after the first),
// "alternating" two prompts in turn, so each Record moves 96 blocks held
// deeper in the endpoint's LRU list back to the front.
func BenchmarkRecord8KiB(b *testing.B) {
	for _, tc := range []struct {
		name      string
		alternate bool
	}{{"same", false}, {"alternating", true}} {
		b.Run(tc.name, func(b *testing.B) {
			f := newPrefixFixture(false)
			prompts := [][]uint64{Blocks(f.seed, f.prompt, testBlockSize, nil)}
			if tc.alternate {
				prompts = append(prompts, Blocks(f.seed, f.other, testBlockSize, nil))
			}
			b.ReportAllocs()
			i := 0
			clk := benchcpu.Start()
			for b.Loop() {
				f.idx.Record("10.0.0.5:8000", prompts[i%len(prompts)])
				i++
			}
			clk.Stop(b)
		})
	}
}

func BenchmarkPlace16(b *testing.B) {
	eps := addrs(16)
	loads := make([]int, 16)
	b.ReportAllocs()
	var k uint64
	clk := benchcpu.Start()
	for b.Loop() {
		k++
		loads[Place(k, eps, loads, testLoadBound)]++
	}
	clk.Stop(b)
}

// fillIndex builds an index of 16 endpoints holding perEndpoint distinct
// blocks each and returns it with the live heap it added, after GC.
func fillIndex(perEndpoint int) (*Index, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	idx := NewIndex(perEndpoint)
	blocks := make([]uint64, 128)
	h := uint64(1)
	for e := 0; e < 16; e++ {
		ep := fmt.Sprintf("10.0.0.%d:8000", e)
		idx.Add(ep)
		for n := 0; n < perEndpoint; n += len(blocks) {
			for i := range blocks {
				h = h*6364136223846793005 + 1442695040888963407
				blocks[i] = h
			}
			idx.Record(ep, blocks)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return idx, after.HeapAlloc - before.HeapAlloc
}

// BenchmarkIndexMemory reports live heap bytes per (endpoint, block) entry of
// a full index (16 endpoints x 16384 distinct blocks), next to what Stats
// estimates.
func BenchmarkIndexMemory(b *testing.B) {
	b.ReportAllocs()
	var idx *Index
	var heap uint64
	for b.Loop() {
		idx, heap = fillIndex(16384)
	}
	entries, approx := idx.Stats()
	b.ReportMetric(float64(heap)/float64(entries), "heap-B/entry")
	b.ReportMetric(float64(approx)/float64(entries), "stats-B/entry")
	runtime.KeepAlive(idx)
}

// Stats must stay an honest estimate of the real heap an index holds.
func TestIndexMemoryMatchesStats(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 65k-entry index")
	}
	idx, heap := fillIndex(4096)
	entries, approx := idx.Stats()
	runtime.KeepAlive(idx)
	t.Logf("%d entries: heap %d B (%.1f B/entry), Stats %d B (%.1f B/entry)",
		entries, heap, float64(heap)/float64(entries), approx, float64(approx)/float64(entries))
	if float64(approx) < 0.6*float64(heap) || float64(approx) > 1.6*float64(heap) {
		t.Errorf("Stats says %d bytes, the heap grew by %d", approx, heap)
	}
}
