package cache

import (
	"strings"
	"testing"
)

// The settings these tests pass where kvgate passes a pool's configured
// ones. Package cache has no defaults: callers pass every value.
const (
	testBlockSize   = 64
	testCacheBlocks = 16384
	testLoadBound   = 1.25
)

func TestBlocksCountAndPartialBlock(t *testing.T) {
	seed := Seed("m", "")
	tests := []struct {
		textLen, blockSize, want int
	}{
		{0, 64, 0},
		{63, 64, 0},
		{64, 64, 1},
		{127, 64, 1},
		{8 << 10, 64, 128},
		{1000, 0, 0},  // no block size: no blocks
		{1000, -1, 0}, // nor a negative one
		{1000, 300, 3},
	}
	for _, tt := range tests {
		got := Blocks(seed, []byte(strings.Repeat("x", tt.textLen)), tt.blockSize, nil)
		if len(got) != tt.want {
			t.Errorf("Blocks(len %d, size %d) gave %d hashes, want %d", tt.textLen, tt.blockSize, len(got), tt.want)
		}
	}
}

// Hash i must depend on every byte before the end of block i and on nothing
// after it; the large-block path must agree with the stack path's semantics.
func TestBlocksChain(t *testing.T) {
	for _, size := range []int{64, 300} {
		seed := Seed("m", "")
		a := []byte(strings.Repeat("abcdefgh", 200))
		b := append([]byte(nil), a...)
		b[size+3] ^= 1 // inside block 1
		ha := Blocks(seed, a, size, nil)
		hb := Blocks(seed, b, size, nil)
		if ha[0] != hb[0] {
			t.Errorf("size %d: block 0 changed by an edit in block 1", size)
		}
		for i := 1; i < len(ha); i++ {
			if ha[i] == hb[i] {
				t.Errorf("size %d: block %d unchanged by an edit in block 1", size, i)
			}
		}
		// A prefix of the text gives a prefix of the hashes.
		hp := Blocks(seed, a[:3*size+5], size, nil)
		for i := range hp {
			if hp[i] != ha[i] {
				t.Errorf("size %d: prefix hash %d differs", size, i)
			}
		}
		// Identical blocks at different depths hash differently.
		same := Blocks(seed, []byte(strings.Repeat("z", 4*size)), size, nil)
		for i := 1; i < len(same); i++ {
			if same[i] == same[i-1] {
				t.Errorf("size %d: repeated block %d has the hash of block %d", size, i, i-1)
			}
		}
	}
}

func TestSeedIsolation(t *testing.T) {
	text := []byte(strings.Repeat("shared system prompt. ", 100))
	seeds := map[string]uint64{
		"model a, no salt":  Seed("a", ""),
		"model b, no salt":  Seed("b", ""),
		"model a, salt x":   Seed("a", "x"),
		"model a, salt y":   Seed("a", "y"),
		"model ax, no salt": Seed("ax", ""),
		"model a, salt ''x": Seed("", "ax"),
	}
	seen := map[uint64]string{}
	for name, seed := range seeds {
		for i, h := range Blocks(seed, text, 64, nil) {
			if other, dup := seen[h]; dup {
				t.Fatalf("%s block %d shares its hash with %s", name, i, other)
			}
			seen[h] = name
		}
	}
}

func TestBlocksReusesDst(t *testing.T) {
	text := []byte(strings.Repeat("y", 8<<10))
	dst := make([]uint64, 0, 128)
	seed := Seed("m", "")
	allocs := testing.AllocsPerRun(20, func() { dst = Blocks(seed, text, 64, dst) })
	if allocs != 0 {
		t.Fatalf("Blocks allocates %.1f times with room in dst", allocs)
	}
}

func TestPlacementKey(t *testing.T) {
	seed := Seed("m", "")
	blocks := []uint64{10, 11, 12, 13}
	tests := []struct {
		blocks []uint64
		depth  int
		want   uint64
	}{
		{nil, 3, seed},
		{blocks, 2, 11},
		{blocks, 9, 13},
		{blocks, PlacementDepth, 13}, // deeper than 4 blocks: the last one
		{blocks, 0, 10},              // below 1: the first block
	}
	for _, tt := range tests {
		if got := PlacementKey(seed, tt.blocks, tt.depth); got != tt.want {
			t.Errorf("PlacementKey(%v, %d) = %d, want %d", tt.blocks, tt.depth, got, tt.want)
		}
	}
}

func TestCapacityFromServer(t *testing.T) {
	tests := []struct{ gpu, tokens, size, want int }{
		{1000, 16, 64, 1000},
		{1000, 32, 64, 2000},
		{1000, 16, 128, 500},
		{1000, 16, 0, 0}, // no block size: the index's own capacity
		{0, 16, 64, 0},
		{1000, 0, 64, 0},
	}
	for _, tt := range tests {
		if got := CapacityFromServer(tt.gpu, tt.tokens, tt.size); got != tt.want {
			t.Errorf("CapacityFromServer(%d, %d, %d) = %d, want %d", tt.gpu, tt.tokens, tt.size, got, tt.want)
		}
	}
}
