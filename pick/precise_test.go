package pick

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/kvgate/kvgate/cache"
	"github.com/kvgate/kvgate/internal/benchcpu"
)

// tokenIDs is a stand-in tokenizer for tests: 4 bytes per token.
func tokenIDs(text []byte) []uint32 {
	out := make([]uint32, 0, len(text)/4)
	for i := 0; i+4 <= len(text); i += 4 {
		out = append(out, uint32(text[i])|uint32(text[i+1])<<8|uint32(text[i+2])<<16|uint32(text[i+3])<<24)
	}
	return out
}

// storeTokens records that endpoint slot s holds every block of tokens, as
// a BlockStored event would (engine hashes are arbitrary here).
func storeTokens(x *cache.TokenIndex, s int, tokens []uint32, engineBase uint64) {
	n := len(tokens) / 16
	eng := make([]uint64, n)
	for i := range eng {
		eng[i] = engineBase + uint64(i)
	}
	x.Stored(s, eng, 0, false, tokens[:n*16], 16, 0)
}

func TestPrecisePrefersTheRealHolder(t *testing.T) {
	p, eps := testPool(t, 4, nil)
	x := p.Tokens()
	p.ConfigurePrecise(1<<16, int64(time.Hour))
	prompt := []byte(strings.Repeat("the real holder is endpoint two; ", 64))[:2048]
	// The approximate index believes endpoint 0 holds the prompt...
	seed := cache.Seed("m", "")
	blocks := cache.Blocks(seed, prompt, testBlockSize, nil)
	p.Index().Record(eps[0].Addr, blocks)
	// ...but endpoint 2's events say it holds it, endpoint 0's say nothing.
	for _, e := range eps {
		x.SetSynced(e.tslot, true)
	}
	toks := tokenIDs(prompt)
	storeTokens(x, eps[2].tslot, toks, 1000)
	tb := cache.TokenBlocks(0, toks, 16, nil)
	pick := func(precise bool) Decision {
		pc := AcquirePickContext()
		defer ReleasePickContext(pc)
		pc.Req.HasPrompt, pc.Req.Seed, pc.Req.PromptTokens = true, seed, len(toks)
		pc.Req.Blocks = append(pc.Req.Blocks, blocks...)
		if precise {
			pc.Req.TokenBlocks = append(pc.Req.TokenBlocks, tb...)
		}
		d := p.Pick(pc, eps)
		d.Endpoint.End(d.Tokens)
		return d
	}
	// Stale events (a pick unanswered past the window) fall back to the
	// approximate index, which believes endpoint 0.
	p.ConfigurePrecise(1<<16, 1)
	for _, e := range eps {
		x.Picked(e.tslot, 1) // long ago, never answered
	}
	if d := pick(true); d.Endpoint != eps[0] {
		t.Fatalf("with stale events the pick chose %s (%v, matched %d), want the approximate holder %s", d.Endpoint.Addr, d.Reason, d.Matched, eps[0].Addr)
	}
	// Events answer the picks: precise again, and endpoint 2 really holds it.
	p.ConfigurePrecise(1<<16, int64(time.Hour))
	for _, e := range eps {
		x.Removed(e.tslot, nil)
	}
	if d := pick(true); d.Endpoint != eps[2] || d.Matched != len(blocks) {
		t.Fatalf("precise pick chose %s (matched %d/%d), want %s with everything", d.Endpoint.Addr, d.Matched, len(blocks), eps[2].Addr)
	}
}

// BenchmarkPickPrecise8KiB16Endpoints is BenchmarkPick8KiB16Endpoints in
// precise mode: the prompt's token blocks (tokenized beforehand: the
// tokenize call is measured in package kvevents) are also matched against
// the KV-event index, where each endpoint holds 64 prompts, and every
// endpoint's events are live.
func BenchmarkPickPrecise8KiB16Endpoints(b *testing.B) {
	p, eps := testPool(b, 16, nil)
	p.ConfigurePrecise(1<<20, int64(time.Hour))
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
	x := p.Tokens()
	for i := range eps {
		x.SetSynced(eps[i].tslot, true)
		for j := range 64 {
			t := text()
			p.Index().Record(eps[i].Addr, cache.Blocks(seed, t, testBlockSize, nil))
			storeTokens(x, eps[i].tslot, tokenIDs(t), uint64(i)<<32|uint64(j)<<16)
		}
	}
	prompts := [][]byte{text(), text(), text(), text()}
	tblocks := make([][]uint64, len(prompts))
	for i, t := range prompts {
		tblocks[i] = cache.TokenBlocks(0, tokenIDs(t), 16, nil)
	}
	b.ReportAllocs()
	i := 0
	clk := benchcpu.Start()
	for b.Loop() {
		pc := AcquirePickContext()
		pc.Req.HasPrompt, pc.Req.Seed, pc.Req.PromptTokens = true, seed, 2048
		pc.Req.Blocks = cache.Blocks(seed, prompts[i%len(prompts)], testBlockSize, pc.Req.Blocks)
		pc.Req.TokenBlocks = append(pc.Req.TokenBlocks[:0], tblocks[i%len(prompts)]...)
		d := p.Pick(pc, eps)
		d.Endpoint.End(d.Tokens)
		ReleasePickContext(pc)
		i++
	}
	clk.Stop(b)
}
