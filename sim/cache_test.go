package sim

import (
	"slices"
	"strings"
	"testing"
)

func TestBlockHashes(t *testing.T) {
	a := strings.Repeat("a", BlockChars)
	b := strings.Repeat("b", BlockChars)
	base := BlockHashes("m", "", a+b+"tail")
	if len(base) != 2 {
		t.Fatalf("%d hashes for two full blocks and a tail, want 2", len(base))
	}
	for _, tc := range []struct {
		name              string
		model, salt, text string
		wantSameFirst     bool
		wantSameSecond    bool
	}{
		{"same text", "m", "", a + b, true, true},
		{"other salt", "m", "s", a + b, false, false},
		{"other model", "m2", "", a + b, false, false},
		{"other second block", "m", "", a + a, true, false},
		{"other first block chains", "m", "", b + b, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := BlockHashes(tc.model, tc.salt, tc.text)
			if (got[0] == base[0]) != tc.wantSameFirst || (got[1] == base[1]) != tc.wantSameSecond {
				t.Fatalf("hashes %x vs %x", got, base)
			}
		})
	}
	if BlockHashes("m", "", a[:BlockChars-1]) != nil {
		t.Fatal("a partial block got a hash")
	}
}

// checkPool verifies the pool's accounting invariants.
func checkPool(t *testing.T, p *blockPool) {
	t.Helper()
	n := 0
	for e := p.head; e != nil; e = e.next {
		if e.refs != 0 || p.entries[e.hash] != e {
			t.Fatalf("evictable list holds a pinned or unknown entry %+v", e)
		}
		n++
	}
	if n != p.evictable || p.free() < 0 || p.used() < 0 || p.used() > p.total {
		t.Fatalf("pool out of balance: list %d evictable %d free %d used %d total %d", n, p.evictable, p.free(), p.used(), p.total)
	}
}

func TestBlockPoolAdmitCommitRelease(t *testing.T) {
	p := newBlockPool(6)
	h := []uint64{1, 2, 3}

	held, fresh, ok := p.admit(h, 3, 4)
	if !ok || len(held) != 0 || fresh != 4 || p.used() != 4 {
		t.Fatalf("cold admit: held %d fresh %d ok %v used %d", len(held), fresh, ok, p.used())
	}
	held, fresh = p.commit(held, fresh, h)
	checkPool(t, p)
	if len(held) != 3 || fresh != 1 || len(p.entries) != 3 || p.used() != 4 {
		t.Fatalf("commit: held %d private %d entries %d used %d", len(held), fresh, len(p.entries), p.used())
	}
	// A second request with the same prefix while the first runs shares its blocks.
	held2, fresh2, ok := p.admit(h, 2, 3)
	if !ok || len(held2) != 2 || fresh2 != 1 || p.used() != 5 {
		t.Fatalf("warm admit: held %d fresh %d ok %v used %d", len(held2), fresh2, ok, p.used())
	}
	// A third that needs 2 fresh blocks does not fit (1 free, nothing evictable).
	if _, _, ok := p.admit([]uint64{9}, 0, 2); ok {
		t.Fatal("admitted beyond the pool")
	}
	held2, fresh2 = p.commit(held2, fresh2, h)
	p.release(held, fresh)
	p.release(held2, fresh2)
	checkPool(t, p)
	if p.used() != 0 || p.evictable != 3 {
		t.Fatalf("after release: used %d evictable %d", p.used(), p.evictable)
	}
	var order []uint64
	for e := p.head; e != nil; e = e.next {
		order = append(order, e.hash)
	}
	if !slices.Equal(order, []uint64{3, 2, 1}) {
		t.Fatalf("eviction order %v, want deepest block first [3 2 1]", order)
	}
	// Needing every block evicts the whole cache.
	if _, fresh, ok := p.admit([]uint64{7}, 0, 6); !ok || fresh != 6 || len(p.entries) != 0 {
		t.Fatalf("full admit: ok %v fresh %d entries %d", ok, fresh, len(p.entries))
	}
	checkPool(t, p)
}
