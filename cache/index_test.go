package cache

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// check verifies every invariant linking the LRU lists, the reverse map and
// the counters.
func (x *Index) check() error {
	x.mu.RLock()
	defer x.mu.RUnlock()
	total := 0
	for s := range x.eps {
		ep := &x.eps[s]
		if !ep.used {
			if ep.n != 0 || ep.head != -1 || ep.tail != -1 {
				return fmt.Errorf("free slot %d holds entries", s)
			}
			continue
		}
		n, prev := 0, int32(-1)
		for k := ep.head; k >= 0; k = x.nodes[k].next {
			nd := x.nodes[k]
			if nd.slot != int32(s) || nd.prev != prev {
				return fmt.Errorf("slot %d: node %d has slot %d prev %d, want %d %d", s, k, nd.slot, nd.prev, s, prev)
			}
			if _, head, ok := x.tab.get(nd.hash); !ok || !x.chainHas(head, k) {
				return fmt.Errorf("slot %d: node %d missing from the reverse map", s, k)
			}
			prev = k
			n++
		}
		if prev != ep.tail || n != ep.n {
			return fmt.Errorf("slot %d: tail %d count %d, want %d %d", s, ep.tail, ep.n, prev, n)
		}
		if n > x.capacity(int32(s)) {
			return fmt.Errorf("slot %d holds %d > capacity %d", s, n, x.capacity(int32(s)))
		}
		total += n
	}
	if err := x.tab.check(); err != nil {
		return err
	}
	chained := 0
	for _, e := range x.tab.slots {
		if e.head == 0 {
			continue
		}
		h := e.key
		slots := map[int32]bool{}
		var mask uint64
		for k := e.head - 1; k >= 0; k = x.nodes[k].hnext {
			nd := x.nodes[k]
			if nd.hash != h || nd.slot < 0 || !x.eps[nd.slot].used || slots[nd.slot] {
				return fmt.Errorf("hash %x: bad holder node %+v", h, nd)
			}
			slots[nd.slot] = true
			mask |= slotBit(nd.slot)
			chained++
		}
		if mask != e.mask {
			return fmt.Errorf("hash %x: mask %b, holders %b", h, e.mask, mask)
		}
		if len(slots) == 0 {
			return fmt.Errorf("hash %x has an empty holder list", h)
		}
	}
	if total != x.entries || chained != x.entries {
		return fmt.Errorf("entries %d, in LRU lists %d, in reverse map %d", x.entries, total, chained)
	}
	return nil
}

func (x *Index) chainHas(head, k int32) bool {
	for p := head; p >= 0; p = x.nodes[p].hnext {
		if p == k {
			return true
		}
	}
	return false
}

func seq(from, n int) []uint64 {
	b := make([]uint64, n)
	for i := range b {
		b[i] = uint64(from + i)
	}
	return b
}

func mustCheck(t *testing.T, x *Index) {
	t.Helper()
	if err := x.check(); err != nil {
		t.Fatal(err)
	}
}

func TestMatchLeadingBlocks(t *testing.T) {
	x := NewIndex(100)
	a, b, c := x.Add("a"), x.Add("b"), x.Add("c")
	x.Record("a", []uint64{1, 2, 3, 4})
	x.Record("b", []uint64{1, 2, 9})
	x.Record("c", []uint64{20, 30, 40})
	tests := []struct {
		name    string
		blocks  []uint64
		a, b, c int
	}{
		{"full prefix", []uint64{1, 2, 3, 4}, 4, 2, 0},
		{"longer prompt", []uint64{1, 2, 3, 4, 5, 6}, 4, 2, 0},
		{"stop at first miss", []uint64{1, 7, 3, 4}, 1, 1, 0},
		{"later blocks held, first not", []uint64{21, 30, 40}, 0, 0, 0},
		{"c alone", []uint64{20, 30, 41}, 0, 0, 2},
		{"empty prompt", nil, 0, 0, 0},
		{"unknown", []uint64{42}, 0, 0, 0},
	}
	out := make([]int, 0, 8)
	for _, tt := range tests {
		out = x.Match(tt.blocks, out)
		if len(out) != 3 || out[a] != tt.a || out[b] != tt.b || out[c] != tt.c {
			t.Errorf("%s: Match = %v, want a=%d b=%d c=%d", tt.name, out, tt.a, tt.b, tt.c)
		}
	}
	mustCheck(t, x)
}

func TestLRUEvictionAtCapacity(t *testing.T) {
	x := NewIndex(4)
	s := x.Add("a")
	x.Record("a", seq(100, 3)) // 100 101 102
	x.Record("a", seq(200, 2)) // 200 201: evicts 102, the tail of the older prompt
	if n, _ := x.Stats(); n != 4 {
		t.Fatalf("entries = %d, want 4", n)
	}
	if got := x.Match(seq(100, 3), nil)[s]; got != 2 {
		t.Errorf("old prompt matched %d blocks, want 2 (tail evicted first)", got)
	}
	if got := x.Match(seq(200, 2), nil)[s]; got != 2 {
		t.Errorf("new prompt matched %d blocks, want 2", got)
	}
	// Re-recording refreshes recency: 100,101 become newest, 200,201 oldest.
	x.Record("a", seq(100, 2))
	x.Record("a", seq(300, 2))
	if got := x.Match(seq(100, 2), nil)[s]; got != 2 {
		t.Errorf("refreshed prompt matched %d blocks, want 2", got)
	}
	if got := x.Match(seq(200, 2), nil)[s]; got != 0 {
		t.Errorf("stale prompt matched %d blocks, want 0", got)
	}
	// A prompt longer than the capacity keeps its leading blocks.
	x.Record("a", seq(500, 10))
	if got := x.Match(seq(500, 10), nil)[s]; got != 4 {
		t.Errorf("long prompt matched %d blocks, want 4", got)
	}
	mustCheck(t, x)
}

func TestSetCapacity(t *testing.T) {
	x := NewIndex(10)
	s := x.Add("a")
	x.Record("a", seq(0, 10))
	x.SetCapacity("a", 3)
	if n, _ := x.Stats(); n != 3 {
		t.Fatalf("entries after shrink = %d, want 3", n)
	}
	if got := x.Match(seq(0, 10), nil)[s]; got != 3 {
		t.Errorf("matched %d after shrink, want 3", got)
	}
	x.SetCapacity("a", 0) // back to the default of 10
	x.Record("a", seq(0, 10))
	if got := x.Match(seq(0, 10), nil)[s]; got != 10 {
		t.Errorf("matched %d after restoring the default, want 10", got)
	}
	if x.SetCapacity("nobody", 5) {
		t.Error("SetCapacity of an unknown endpoint reported true")
	}
	mustCheck(t, x)
}

// SetDefaultCapacity resizes the endpoints SetCapacity has not sized, and
// only those.
func TestSetDefaultCapacity(t *testing.T) {
	x := NewIndex(10)
	a, b := x.Add("a"), x.Add("b")
	x.Record("a", seq(0, 10))
	x.Record("b", seq(0, 10))
	x.SetCapacity("b", 8)
	x.SetDefaultCapacity(4)
	m := x.Match(seq(0, 10), nil)
	if m[a] != 4 || m[b] != 8 {
		t.Errorf("matched a=%d b=%d after a default of 4, want 4 and 8 (b sized on its own)", m[a], m[b])
	}
	x.SetDefaultCapacity(0) // below 1: one block, never a default of its own
	m = x.Match(seq(0, 10), nil)
	if m[a] != 1 || m[b] != 8 {
		t.Errorf("matched a=%d b=%d after a default of 0, want 1 and 8", m[a], m[b])
	}
	x.SetDefaultCapacity(10)
	x.Record("a", seq(0, 10))
	if got := x.Match(seq(0, 10), nil)[a]; got != 10 {
		t.Errorf("matched %d after a default of 10, want 10", got)
	}
	if y := NewIndex(-5); y.Add("a") == 0 && y.Record("a", seq(0, 10)) {
		if n, _ := y.Stats(); n != 1 {
			t.Errorf("NewIndex(-5) holds %d entries per endpoint, want 1", n)
		}
	}
	mustCheck(t, x)
}

func TestRemoveAndSlotReuse(t *testing.T) {
	x := NewIndex(100)
	x.Add("a")
	sb := x.Add("b")
	x.Record("a", seq(0, 5))
	x.Record("b", seq(0, 5))
	if !x.Remove("b") || x.Remove("b") {
		t.Fatal("Remove should report true once, then false")
	}
	mustCheck(t, x)
	if n, _ := x.Stats(); n != 5 {
		t.Fatalf("entries after removing b = %d, want 5", n)
	}
	if x.Record("b", seq(0, 5)) {
		t.Error("Record for a removed endpoint reported true")
	}
	if _, ok := endpointAt(x, sb); ok {
		t.Error("Endpoint of a freed slot reported ok")
	}
	// The freed slot is reused, and the newcomer inherits nothing.
	sc := x.Add("c")
	if sc != sb {
		t.Errorf("Add after Remove got slot %d, want the freed slot %d", sc, sb)
	}
	if got := x.Match(seq(0, 5), nil)[sc]; got != 0 {
		t.Errorf("new endpoint in a reused slot matched %d blocks, want 0", got)
	}
	if name, _ := endpointAt(x, sc); name != "c" {
		t.Errorf("Endpoint(%d) = %q, want c", sc, name)
	}
	if again := x.Add("c"); again != sc {
		t.Errorf("second Add returned %d, want %d", again, sc)
	}
	mustCheck(t, x)
}

// naiveMatch computes Match by asking, block by block, whether each slot's
// holder list contains it.
func (x *Index) naiveMatch(blocks []uint64) []int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]int, len(x.eps))
	for s := range x.eps {
		for _, h := range blocks {
			held := false
			if _, head, ok := x.tab.get(h); ok {
				for k := head; k >= 0; k = x.nodes[k].hnext {
					held = held || x.nodes[k].slot == int32(s)
				}
			}
			if !held {
				break
			}
			out[s]++
		}
	}
	return out
}

// Random operations against the invariants and a naive Match, for a pool
// that fits the holder mask and one that does not.
func TestIndexRandomOperations(t *testing.T) {
	for _, endpoints := range []int{5, 70} {
		t.Run(fmt.Sprint(endpoints, " endpoints"), func(t *testing.T) {
			randomOperations(t, endpoints)
		})
	}
}

func randomOperations(t *testing.T, endpoints int) {
	r := rand.New(rand.NewPCG(1, uint64(endpoints)))
	x := NewIndex(20)
	names := make([]string, endpoints)
	for i := range names {
		names[i] = fmt.Sprint("ep", i)
	}
	for step := 0; step < 4000; step++ {
		name := names[r.IntN(len(names))]
		switch op := r.IntN(10); {
		case op < 6:
			x.Add(name)
			x.Record(name, seq(r.IntN(40), 1+r.IntN(15)))
		case op < 7:
			x.Remove(name)
		case op < 8:
			x.SetCapacity(name, r.IntN(30))
		default:
			blocks := seq(r.IntN(40), 1+r.IntN(15))
			got, want := x.Match(blocks, nil), x.naiveMatch(blocks)
			if !slices.Equal(got, want) {
				t.Fatalf("step %d: Match(%v) = %v, naive %v", step, blocks, got, want)
			}
		}
		if step%50 == 0 {
			mustCheck(t, x)
		}
	}
	mustCheck(t, x)
	for _, n := range names {
		x.Remove(n)
	}
	if n, _ := x.Stats(); n != 0 {
		t.Fatalf("entries after removing everyone = %d", n)
	}
	mustCheck(t, x)
}

func TestMatchReusesOut(t *testing.T) {
	x := NewIndex(testCacheBlocks)
	for i := 0; i < 16; i++ {
		x.Add(fmt.Sprint("10.0.0.", i))
		x.Record(fmt.Sprint("10.0.0.", i), seq(0, 64))
	}
	out := make([]int, 0, 16)
	blocks := seq(0, 128)
	allocs := testing.AllocsPerRun(20, func() { out = x.Match(blocks, out) })
	if allocs != 0 {
		t.Fatalf("Match allocates %.1f times with a large enough out", allocs)
	}
	for s, m := range out {
		if m != 64 {
			t.Errorf("slot %d matched %d, want 64", s, m)
		}
	}
}

func TestStatsBytes(t *testing.T) {
	x := NewIndex(1000)
	x.Add("a")
	x.Add("b")
	x.Record("a", seq(0, 1000))
	x.Record("b", seq(0, 1000)) // shared hashes: one map entry each
	entries, bytes := x.Stats()
	if entries != 2000 {
		t.Fatalf("entries = %d, want 2000", entries)
	}
	min := 2000*nodeBytes + 1000*tslotBytes*4/3
	if bytes < min || bytes > 2*min {
		t.Errorf("approxBytes = %d, want between %d and %d", bytes, min, 2*min)
	}
}

// Matchers, recorders and membership churn at once: run with -race. The
// loops are bounded and the invariants are checked when all have stopped.
func TestIndexConcurrent(t *testing.T) {
	x := NewIndex(64)
	names := []string{"a", "b", "c", "d"}
	for _, n := range names {
		x.Add(n)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(2)
		go func() { // matcher
			defer wg.Done()
			out := make([]int, 0, 8)
			for i := 0; i < 2000; i++ {
				blocks := seq(i%50, 10)
				out = x.Match(blocks, out)
				for _, m := range out {
					if m > len(blocks) {
						t.Errorf("matched %d of %d", m, len(blocks))
						return
					}
				}
			}
		}()
		go func() { // recorder
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				x.Record(names[(i+g)%len(names)], seq(i%50, 10))
			}
		}()
	}
	wg.Add(1)
	go func() { // churn
		defer wg.Done()
		for i := 0; i < 500; i++ {
			n := names[i%len(names)]
			x.Remove(n)
			x.Add(n)
			x.SetCapacity(n, 32+i%64)
			_, _ = x.Stats()
		}
	}()
	wg.Wait()
	mustCheck(t, x)
}

// The unhashed tail of a long prompt ages the endpoint's LRU as the server's
// cache ages, evicts first, never matches, and is capped at the capacity.
func TestRecordTail(t *testing.T) {
	tests := []struct {
		name      string
		tail      int
		wantA     int // leading blocks of prompt a still matched after b
		wantTotal int // entries of the endpoint
	}{
		{"no tail", 0, 10, 20},
		{"tail evicts the oldest prompt's tail end", 85, 5, 100},
		{"tail past the capacity", 1 << 20, 0, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := NewIndex(100)
			x.Add("e")
			a, b := seq(1000, 10), seq(2000, 10)
			x.Record("e", a)
			if !x.RecordTail("e", b, tc.tail) {
				t.Fatal("RecordTail on a registered endpoint reported false")
			}
			mustCheck(t, x)
			if got := x.Match(a, nil)[0]; got != tc.wantA {
				t.Errorf("prompt a matches %d blocks, want %d", got, tc.wantA)
			}
			if got := x.Match(b, nil)[0]; got != len(b) {
				t.Errorf("prompt b matches %d blocks, want all %d (its tail must be older than its hashed blocks)", got, len(b))
			}
			if got := x.Match(append(slices.Clone(b), tailHash(b[len(b)-1], 0)), nil)[0]; tc.tail > 0 && got != len(b)+1 {
				t.Errorf("a prompt hashing one block further matched %d; the tail entry must be the chained opaque one", got)
			}
			if n, _ := x.Stats(); n != tc.wantTotal {
				t.Errorf("%d entries, want %d", n, tc.wantTotal)
			}
		})
	}
	if x := NewIndex(10); x.RecordTail("unknown", seq(1, 3), 5) {
		t.Error("RecordTail on an unknown endpoint reported true")
	}
}

// endpointAt returns the endpoint registered at slot; ok is false for a free
// or out-of-range slot.
func endpointAt(x *Index, slot int) (endpoint string, ok bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if slot < 0 || slot >= len(x.eps) || !x.eps[slot].used {
		return "", false
	}
	return x.eps[slot].name, true
}

// Recording a prompt that already is the endpoint's most recent run changes
// nothing, so it must not wait for the write lock: a Record while a reader
// holds the index returns. (A Record that needs the write lock would wait
// for the reader; the test then fails after a generous grace period rather
// than hanging.)
func TestRecordUnchangedTakesReadLock(t *testing.T) {
	x := NewIndex(100)
	x.Add("a")
	x.RecordTail("a", seq(0, 10), 3)
	before := x.lruOf(0)
	tests := []struct {
		name   string
		blocks []uint64
		tail   int
	}{
		{"same prompt and tail", seq(0, 10), 3},
		{"a prefix of it, no tail", seq(0, 4), 0},
		{"no blocks", nil, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x.mu.RLock()
			done := make(chan bool)
			go func() { done <- x.RecordTail("a", tc.blocks, tc.tail) }()
			select {
			case ok := <-done:
				x.mu.RUnlock()
				if !ok {
					t.Error("RecordTail reported false for a registered endpoint")
				}
			case <-time.After(10 * time.Second):
				x.mu.RUnlock()
				<-done
				t.Fatal("RecordTail of an unchanged prompt waited for the write lock")
			}
			if got := x.lruOf(0); !slices.Equal(got, before) {
				t.Errorf("LRU changed: %v, was %v", got, before)
			}
		})
	}
}

// Room is capacity less entries per slot, never negative, and 0 for a
// freed slot.
func TestIndexRoom(t *testing.T) {
	x := NewIndex(10)
	a, b, c := x.Add("a"), x.Add("b"), x.Add("c")
	x.SetCapacity("c", 4)
	x.Record("a", []uint64{1, 2, 3})
	x.Record("b", []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	x.Record("c", []uint64{7})
	x.Remove("c")
	room := x.Room(nil)
	for _, tc := range []struct {
		name string
		slot int
		want int
	}{{"three of ten", a, 7}, {"full, oldest evicted", b, 0}, {"removed", c, 0}} {
		if room[tc.slot] != tc.want {
			t.Errorf("%s: room %d, want %d", tc.name, room[tc.slot], tc.want)
		}
	}
}
