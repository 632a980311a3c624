package cache

import (
	"math/bits"
	"math/rand/v2"
)

// table is the Index's reverse map, from a block hash to its holders: an
// open-addressed hash table with linear probing and backward-shift deletion
// (no tombstones), stored in one pointer-free slice so the garbage collector
// never scans it and a lookup costs one or two cache lines.
//
// Block hashes are already uniform, but a client chooses the prompt text and
// the seed is public, so the home slot mixes the key with a random per-table
// seed (one multiply): nobody outside the process can aim many blocks at one
// probe run, as the per-map seed of Go's built-in map prevents too.
//
// It is not safe for concurrent use; Index's lock guards it.
type table struct {
	slots []tslot
	n     int    // used slots
	shift uint   // 64 - log2(len(slots))
	seed  uint64 // mixed into every home slot
}

// tslot is one table entry: a block hash and its holders (see holders).
type tslot struct {
	key  uint64
	mask uint64 // a bit per holding slot below maskSlots
	head int32  // first holder node + 1; 0 marks a free entry
}

const (
	// tslotBytes is the size of a tslot (8+8+4, padded to 8).
	tslotBytes = 24
	// minTableSlots is the table's size once it holds anything.
	minTableSlots = 16
	// golden is 2^64 divided by the golden ratio, the multiplier of
	// Fibonacci hashing.
	golden = 0x9e3779b97f4a7c15
)

func newTable() table { return table{seed: rand.Uint64()} }

// home is key's preferred entry.
func (t *table) home(key uint64) int {
	return int(((key ^ t.seed) * golden) >> t.shift)
}

// find returns the entry holding key, or -1.
func (t *table) find(key uint64) int {
	if t.n == 0 {
		return -1
	}
	m := len(t.slots) - 1
	for i := t.home(key); ; i = (i + 1) & m {
		e := &t.slots[i]
		if e.head == 0 {
			return -1
		}
		if e.key == key {
			return i
		}
	}
}

// get returns key's holders (zero when absent).
func (t *table) get(key uint64) (mask uint64, head int32, ok bool) {
	if i := t.find(key); i >= 0 {
		e := &t.slots[i]
		return e.mask, e.head - 1, true
	}
	return 0, -1, false
}

// insert returns the entry of key, adding a free one (head 0, mask 0) that
// the caller must fill with a holder at once when key is absent. It may grow
// the table, which moves entries: indexes from before do not survive it.
func (t *table) insert(key uint64) int {
	if (t.n+1)*4 > len(t.slots)*3 { // keep the load at most 3/4
		t.resize(max(2*len(t.slots), minTableSlots))
	}
	m := len(t.slots) - 1
	for i := t.home(key); ; i = (i + 1) & m {
		e := &t.slots[i]
		if e.head == 0 {
			e.key, e.mask = key, 0
			t.n++
			return i
		}
		if e.key == key {
			return i
		}
	}
}

// remove frees entry i, shifting back the entries of its probe run that
// would otherwise become unreachable. It moves entries: indexes from before
// do not survive it.
func (t *table) remove(i int) {
	m := len(t.slots) - 1
	for j := (i + 1) & m; t.slots[j].head != 0; j = (j + 1) & m {
		// j stays where it is when its home lies cyclically in (i, j].
		h := t.home(t.slots[j].key)
		if i <= j {
			if i < h && h <= j {
				continue
			}
		} else if i < h || h <= j {
			continue
		}
		t.slots[i] = t.slots[j]
		i = j
	}
	t.slots[i] = tslot{}
	t.n--
}

func (t *table) resize(size int) {
	old := t.slots
	t.slots = make([]tslot, size)
	t.shift = uint(64 - bits.TrailingZeros(uint(size))) // size is a power of two
	m := size - 1
	for _, e := range old {
		if e.head == 0 {
			continue
		}
		i := t.home(e.key)
		for t.slots[i].head != 0 {
			i = (i + 1) & m
		}
		t.slots[i] = e
	}
}

// bytes is the table's memory.
func (t *table) bytes() int { return cap(t.slots) * tslotBytes }
