package cache

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// check verifies the table's invariants: its size is a power of two at a
// load of at most 3/4, n counts the used entries, keys are distinct, and
// every key is reachable from its home entry without crossing a free one
// (what backward-shift deletion must preserve).
func (t *table) check() error {
	if len(t.slots) == 0 {
		if t.n != 0 {
			return fmt.Errorf("empty table counts %d entries", t.n)
		}
		return nil
	}
	if len(t.slots)&(len(t.slots)-1) != 0 || len(t.slots) != 1<<(64-t.shift) {
		return fmt.Errorf("size %d, shift %d", len(t.slots), t.shift)
	}
	if t.n*4 > len(t.slots)*3 {
		return fmt.Errorf("load %d/%d over 3/4", t.n, len(t.slots))
	}
	used, seen := 0, map[uint64]bool{}
	m := len(t.slots) - 1
	for i, e := range t.slots {
		if e.head == 0 {
			continue
		}
		used++
		if seen[e.key] {
			return fmt.Errorf("key %x twice", e.key)
		}
		seen[e.key] = true
		for j := t.home(e.key); j != i; j = (j + 1) & m {
			if t.slots[j].head == 0 {
				return fmt.Errorf("key %x at %d unreachable from its home %d: %d is free", e.key, i, t.home(e.key), j)
			}
		}
	}
	if used != t.n {
		return fmt.Errorf("%d entries used, n = %d", used, t.n)
	}
	return nil
}

// put sets key's holder head (node+1) the way Index does.
func (t *table) put(key uint64, head int32) {
	t.slots[t.insert(key)].head = head
}

func (t *table) del(key uint64) bool {
	i := t.find(key)
	if i >= 0 {
		t.remove(i)
	}
	return i >= 0
}

func TestTable(t *testing.T) {
	tests := []struct {
		name    string
		seed    uint64
		put     []uint64 // inserted in order, head = position+1
		del     []uint64 // then removed in order
		present []uint64
		absent  []uint64
		size    int // len(slots) at the end
	}{
		{name: "empty", absent: []uint64{0, 1, 42}, size: 0},
		{name: "zero is a key like any other", put: []uint64{0, 1}, present: []uint64{0, 1}, absent: []uint64{2}, size: 16},
		{name: "put twice keeps one entry", put: []uint64{7, 7, 7}, present: []uint64{7}, size: 16},
		{name: "delete the only key", put: []uint64{5}, del: []uint64{5}, absent: []uint64{5}, size: 16},
		{name: "delete an absent key", put: []uint64{5}, del: []uint64{6}, present: []uint64{5}, size: 16},
		{name: "grows past 3/4 load", put: seq(1, 13), present: seq(1, 13), absent: []uint64{14}, size: 32},
		{name: "12 keys fit 16 entries", put: seq(1, 12), present: seq(1, 12), size: 16},
		{name: "delete half", put: seq(0, 40), del: seq(0, 20), present: seq(20, 20), absent: seq(0, 20), size: 64},
		{name: "delete all", put: seq(0, 40), del: seq(0, 40), absent: seq(0, 40), size: 64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab := table{seed: tc.seed}
			for i, k := range tc.put {
				tab.put(k, int32(i+1))
			}
			for _, k := range tc.del {
				tab.del(k)
			}
			if err := tab.check(); err != nil {
				t.Fatal(err)
			}
			for _, k := range tc.present {
				if _, _, ok := tab.get(k); !ok {
					t.Errorf("key %d missing", k)
				}
			}
			for _, k := range tc.absent {
				if _, _, ok := tab.get(k); ok {
					t.Errorf("key %d present", k)
				}
			}
			if len(tab.slots) != tc.size {
				t.Errorf("%d entries, want %d", len(tab.slots), tc.size)
			}
		})
	}
}

// Runs that wrap around the end of the slice and deletions inside them: keys
// chosen to share a home near the end are the worst case for backward
// shifting.
func TestTableWrapAround(t *testing.T) {
	tab := table{seed: 3}
	tab.resize(minTableSlots)
	last := len(tab.slots) - 1
	var keys []uint64
	for k := uint64(0); len(keys) < 8; k++ {
		if h := tab.home(k); h >= last-1 {
			keys = append(keys, k)
		}
	}
	for i, k := range keys {
		tab.put(k, int32(i+1))
	}
	if len(tab.slots) != minTableSlots {
		t.Fatalf("table grew to %d", len(tab.slots))
	}
	for i, k := range keys {
		if !tab.del(k) {
			t.Fatalf("key %d missing", k)
		}
		if err := tab.check(); err != nil {
			t.Fatalf("after deleting %d of %d: %v", i+1, len(keys), err)
		}
		for _, rest := range keys[i+1:] {
			if _, _, ok := tab.get(rest); !ok {
				t.Fatalf("after deleting %d: key %d lost", k, rest)
			}
		}
	}
}

// Random inserts and deletes against Go's map.
func TestTableRandom(t *testing.T) {
	for _, keys := range []uint64{20, 300, 1 << 40} {
		t.Run(fmt.Sprint(keys, " keys"), func(t *testing.T) {
			r := rand.New(rand.NewPCG(5, keys))
			tab, ref := newTable(), map[uint64]int32{}
			for step := range 20000 {
				k := r.Uint64N(keys)
				if r.IntN(3) == 0 {
					_, want := ref[k]
					delete(ref, k)
					if got := tab.del(k); got != want {
						t.Fatalf("step %d: delete %d = %v, want %v", step, k, got, want)
					}
				} else {
					v := int32(step + 1)
					ref[k] = v
					tab.put(k, v)
				}
				if _, head, ok := tab.get(k); ok != (ref[k] != 0) || (ok && head+1 != ref[k]) {
					t.Fatalf("step %d: get %d = %d %v, want %d", step, k, head+1, ok, ref[k])
				}
				if step%500 == 0 {
					if err := tab.check(); err != nil {
						t.Fatalf("step %d: %v", step, err)
					}
				}
			}
			if err := tab.check(); err != nil {
				t.Fatal(err)
			}
			if tab.n != len(ref) {
				t.Fatalf("%d entries, map has %d", tab.n, len(ref))
			}
			for k, v := range ref {
				if _, head, ok := tab.get(k); !ok || head+1 != v {
					t.Fatalf("key %d: %d %v, want %d", k, head+1, ok, v)
				}
			}
		})
	}
}
