package cache

import (
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/kvgate/kvgate/internal/benchcpu"
)

func toks(n int, base uint32) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = base + uint32(i)
	}
	return out
}

// TestTokenIndexChains stores blocks in two events (the second chained on
// the first by engine hash), removes one, and checks matches, orphans,
// LoRA separation, the per-endpoint bound and clearing.
func TestTokenIndexChains(t *testing.T) {
	x := NewTokenIndex(1000, 0)
	a, b := x.Add("a"), x.Add("b")
	t0 := toks(64, 1) // 4 blocks of 16
	own := TokenBlocks(0, t0, 16, nil)
	if n := x.Stored(a, []uint64{901, 902}, 0, false, t0[:32], 16, 0); n != 2 {
		t.Fatalf("stored %d", n)
	}
	if n := x.Stored(a, []uint64{903, 904}, 902, true, t0[32:], 16, 0); n != 2 {
		t.Fatalf("chained store indexed %d", n)
	}
	if n := x.Stored(b, []uint64{777}, 12345, true, t0[16:32], 16, 0); n != 0 || x.Stats(b).Orphans != 1 {
		t.Fatalf("a block with an unknown parent was indexed: %d, %+v", n, x.Stats(b))
	}
	x.Stored(b, []uint64{1}, 0, false, t0[:16], 16, 0)
	if got := x.Match(own, nil); !slices.Equal(got, []int{4, 1}) {
		t.Fatalf("match %v, want [4 1]", got)
	}
	x.Removed(a, []uint64{903})
	if got := x.Match(own, nil); !slices.Equal(got, []int{2, 1}) {
		t.Fatalf("after removing block 3: %v, want [2 1]", got)
	}
	// The same tokens under a LoRA adapter are another chain.
	x.Stored(b, []uint64{50}, 0, false, t0[:16], 16, TokenSeed("adapter"))
	if x.Held(TokenBlockHash(TokenSeed("adapter"), t0[:16])) != true || x.Held(TokenBlockHash(TokenSeed("other"), t0[:16])) {
		t.Fatal("Held does not tell adapter chains apart")
	}
	x.Cleared(a)
	if got := x.Match(own, nil); !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("after clearing a: %v", got)
	}
	// The bound: a capacity of 3 keeps the last 3 blocks stored.
	y := NewTokenIndex(3, 0)
	s := y.Add("s")
	for i := range 4 {
		par, has := uint64(i), i > 0
		y.Stored(s, []uint64{uint64(i + 1)}, par, has, t0[i*16:(i+1)*16], 16, 0)
	}
	if st := y.Stats(s); st.Blocks != 3 {
		t.Fatalf("bounded endpoint holds %d blocks, want 3", st.Blocks)
	}
	if got := y.Match(own, nil); got[0] != 0 {
		t.Fatalf("the oldest block should be forgotten first: match %v", got)
	}
}

func TestTokenIndexLive(t *testing.T) {
	x := NewTokenIndex(10, 100)
	s := x.Add("e")
	if x.Live(s, 1) {
		t.Fatal("live before its subscriber synced")
	}
	x.SetSynced(s, true)
	x.Picked(s, 1000)
	if !x.Live(s, 1100) || x.Live(s, 1101) {
		t.Fatal("a pick unanswered past the stale window must end liveness, not before")
	}
	x.Removed(s, nil) // any event answers
	if !x.Live(s, 5000) {
		t.Fatal("an event must answer the pending pick")
	}
}

// BenchmarkTokenIndexMatch: the precise lookup of an 8 KiB prompt (128
// token blocks) over 16 endpoints each holding 64 such prompts.
func BenchmarkTokenIndexMatch(b *testing.B) {
	x := NewTokenIndex(1<<20, 0)
	var probe []uint64
	for e := range 16 {
		s := x.Add(string(rune('a' + e)))
		for p := range 64 {
			t := toks(2048, uint32(e*100000+p*3000))
			eng := make([]uint64, 128)
			for i := range eng {
				eng[i] = uint64(e)<<40 | uint64(p)<<20 | uint64(i)
			}
			x.Stored(s, eng, 0, false, t, 16, 0)
			if e == 3 && p == 7 {
				probe = TokenBlocks(0, t, 16, nil)
			}
		}
	}
	var out []int
	b.ReportAllocs()
	clk := benchcpu.Start()
	for b.Loop() {
		out = x.Match(probe, out)
	}
	clk.Stop(b)
	if out[3] != 128 {
		b.Fatalf("match %v", out)
	}
}

func TestTokenIndexSpeculate(t *testing.T) {
	x := NewTokenIndex(100, 1000)
	a := x.Add("a")
	t0 := toks(64, 7)
	own := TokenBlocks(0, t0, 16, nil)
	x.Speculate(a, own[:3], 10_000)
	if got := x.Speculated(a, own, 10_500); got != 3 {
		t.Fatalf("a prompt extending the one just sent: speculated %d, want 3", got)
	}
	other := TokenBlocks(0, toks(64, 99), 16, nil)
	if got := x.Speculated(a, other, 10_500); got != 0 {
		t.Fatalf("an unrelated prompt: speculated %d", got)
	}
	if got := x.Speculated(a, own[:2], 10_500); got != 0 {
		t.Fatalf("a prompt shorter than the one sent: speculated %d", got)
	}
	if got := x.Speculated(a, own, 11_001); got != 0 {
		t.Fatalf("past the stale window: speculated %d", got)
	}
	x.Speculate(a, own, 20_000)
	x.Cleared(a)
	if got := x.Speculated(a, own, 20_001); got != 0 {
		t.Fatalf("after clearing: speculated %d", got)
	}
}

// The holder table forgets a hash once no endpoint holds it, whether its
// blocks are removed, cleared, evicted by the bound or their endpoint leaves.
func TestTokenIndexHoldersShrink(t *testing.T) {
	t0 := toks(64, 1)
	tests := []struct {
		name string
		drop func(x *TokenIndex, a, b int)
	}{
		{"removed", func(x *TokenIndex, a, b int) {
			x.Removed(a, []uint64{1, 2, 3, 4})
			x.Removed(b, []uint64{11, 12})
		}},
		{"cleared", func(x *TokenIndex, a, b int) { x.Cleared(a); x.Cleared(b) }},
		{"endpoints removed", func(x *TokenIndex, a, b int) { x.Remove("a"); x.Remove("b") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := NewTokenIndex(1000, 0)
			a, b := x.Add("a"), x.Add("b")
			x.Stored(a, []uint64{1, 2, 3, 4}, 0, false, t0, 16, 0)
			x.Stored(b, []uint64{11, 12}, 0, false, t0[:32], 16, 0) // shares 2 hashes with a
			if x.holders.n != 4 {
				t.Fatalf("%d hashes held, want 4", x.holders.n)
			}
			tc.drop(x, a, b)
			if x.holders.n != 0 {
				t.Errorf("%d hashes still in the holder table", x.holders.n)
			}
		})
	}
}

// Speculate keeps recentPicks distinct prompts: a prompt sent again
// refreshes its entry, so repeats of one prompt do not push the others out,
// and past recentPicks distinct prompts the one sent longest ago goes.
func TestTokenIndexSpeculateRepeats(t *testing.T) {
	x := NewTokenIndex(100, 1000)
	a := x.Add("a")
	prompt := func(i int) []uint64 { return TokenBlocks(0, toks(32, uint32(1000*i)), 16, nil) }
	first := prompt(0)
	x.Speculate(a, first, 10_000)
	for i := range 2 * recentPicks {
		x.Speculate(a, prompt(1), int64(10_001+i))
	}
	if got := x.Speculated(a, first, 10_500); got != len(first) {
		t.Fatalf("after repeats of another prompt: speculated %d, want %d", got, len(first))
	}
	if got := x.Speculated(a, prompt(1), 11_001+2*recentPicks-2); got != len(first) {
		t.Fatalf("a repeated prompt's entry was not refreshed: speculated %d", got)
	}
	for i := 2; i <= recentPicks; i++ { // 63 more distinct: 65 in all
		x.Speculate(a, prompt(i), int64(10_200+i))
	}
	if got := x.Speculated(a, first, 10_500); got != 0 {
		t.Errorf("the prompt sent longest ago is still speculated (%d) past %d distinct prompts", got, recentPicks)
	}
	for i := 1; i <= recentPicks; i++ {
		if got := x.Speculated(a, prompt(i), 10_500); got != len(first) {
			t.Fatalf("prompt %d: speculated %d, want %d", i, got, len(first))
		}
	}
}

// TestTokenSeedStable pins TokenSeed to the hash of its prefixed name (the
// chain every precise-mode index entry hangs on) and to no allocation: it
// runs once per precise-mode request.
func TestTokenSeedStable(t *testing.T) {
	for _, name := range []string{"adapter", "sql-lora", "a/b"} {
		if got, want := TokenSeed(name), xxhash.Sum64String("kvgate/cache/tokens/lora/"+name); got != want {
			t.Errorf("TokenSeed(%q) = %x, want %x", name, got, want)
		}
	}
	if TokenSeed("") != 0 {
		t.Error("TokenSeed(\"\") != 0")
	}
	name := string([]byte("sql-lora"))
	if n := testing.AllocsPerRun(100, func() { _ = TokenSeed(name) }); n != 0 {
		t.Errorf("TokenSeed allocates %v times per call, want 0", n)
	}
}
