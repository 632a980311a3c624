package pick

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/kvgate/kvgate/cache"
	"github.com/kvgate/kvgate/internal/benchcpu"
)

// BenchmarkPick8KiB16Endpoints measures one inference pick as the proxy does
// it after extraction: hash an 8 KiB prompt into 128 blocks, match them in
// the index, filter, score with prefix-affinity's weights, pick,
// record the blocks on the chosen endpoint, and release the in-flight count.
// The index holds 64 prompts per endpoint behind one shared system prompt.
func BenchmarkPick8KiB16Endpoints(b *testing.B) {
	benchPick(b, testPreset)
}

// BenchmarkPickLatency8KiB16Endpoints is the same pick with the latency
// preset, every endpoint having learned a cost model.
func BenchmarkPickLatency8KiB16Endpoints(b *testing.B) {
	benchPick(b, "latency")
}

func benchPick(b *testing.B, preset string) {
	p, eps := testPool(b, 16, func(o *Options) { o.Preset = preset })
	for i, e := range eps {
		teach(e, 16, 0.001, 0.05+0.01*float64(i), 0.1)
	}
	system := strings.Repeat("You are a helpful assistant; follow the policy. ", 43)[:2048]
	r := rand.New(rand.NewPCG(1, 2))
	text := func() []byte {
		t := []byte(system)
		for len(t) < 8<<10 {
			t = fmt.Appendf(t, "user says %x. ", r.Uint64())
		}
		return t[:8<<10]
	}
	seed := cache.Seed("meta-llama/Llama-3.1-8B-Instruct", "")
	for i := range eps {
		for range 64 {
			p.Index().Record(eps[i].Addr, cache.Blocks(seed, text(), testBlockSize, nil))
		}
	}
	prompts := [][]byte{text(), text(), text(), text()}
	b.ReportAllocs()
	i := 0
	clk := benchcpu.Start()
	for b.Loop() {
		pc := AcquirePickContext()
		pc.Req.HasPrompt, pc.Req.Seed, pc.Req.PromptTokens = true, seed, 2048
		pc.Req.Blocks = cache.Blocks(seed, prompts[i%len(prompts)], testBlockSize, pc.Req.Blocks)
		d := p.Pick(pc, eps)
		d.Endpoint.End(d.Tokens)
		ReleasePickContext(pc)
		i++
	}
	clk.Stop(b)
}

// BenchmarkIndexBytesPerEntry reports the prefix index's memory per
// (endpoint, block) entry, as measured by the heap and as Stats estimates.
func BenchmarkIndexBytesPerEntry(b *testing.B) {
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		idx := cache.NewIndex(1 << 20)
		seed := cache.Seed("m", "")
		r := rand.New(rand.NewPCG(3, 4))
		buf := make([]byte, 8<<10)
		var blocks []uint64
		for e := range 16 {
			ep := fmt.Sprintf("10.0.0.%d:8000", e)
			idx.Add(ep)
			for range 64 {
				for j := range buf {
					buf[j] = byte('a' + r.IntN(26))
				}
				blocks = cache.Blocks(seed, buf, testBlockSize, blocks)
				idx.Record(ep, blocks)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		entries, est := idx.Stats()
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(entries), "heap-B/entry")
		b.ReportMetric(float64(est)/float64(entries), "est-B/entry")
		runtime.KeepAlive(idx)
	}
}

// BenchmarkBalance measures the pick of a plain pool (and of a retry): the
// least-request balancer over three endpoints, and the release.
func BenchmarkBalance(b *testing.B) {
	p, eps := testPool(b, 3, func(o *Options) { *o = plainOptions() })
	b.ReportAllocs()
	for b.Loop() {
		pc := AcquirePickContext()
		d := p.Balance(pc, eps)
		ReleasePickContext(pc)
		d.Endpoint.End(0)
	}
}
