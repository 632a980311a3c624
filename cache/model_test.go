package cache

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// refIndex is the Index's specification in its plainest form: per endpoint,
// a slice of block hashes, most recently used first, and Record touching the
// blocks last to first, one at a time, evicting the last entry when a new
// one arrives at capacity.
type refIndex struct {
	defaultCap int
	eps        map[string]*refEndpoint
}

type refEndpoint struct {
	lru      []uint64
	capacity int
}

func newRefIndex(c int) *refIndex {
	return &refIndex{defaultCap: max(c, 1), eps: map[string]*refEndpoint{}}
}

func (r *refIndex) capOf(e *refEndpoint) int {
	if e.capacity > 0 {
		return e.capacity
	}
	return r.defaultCap
}

func (r *refIndex) trim(e *refEndpoint) {
	if c := r.capOf(e); len(e.lru) > c {
		e.lru = e.lru[:c]
	}
}

func (r *refIndex) touch(e *refEndpoint, h uint64) {
	if i := slices.Index(e.lru, h); i >= 0 {
		e.lru = slices.Delete(e.lru, i, i+1)
	} else if len(e.lru) >= r.capOf(e) {
		e.lru = e.lru[:r.capOf(e)-1]
	}
	e.lru = slices.Insert(e.lru, 0, h)
}

func (r *refIndex) recordTail(name string, blocks []uint64, tail int) bool {
	e, ok := r.eps[name]
	if !ok {
		return false
	}
	if tail > 0 && len(blocks) > 0 {
		for i := min(tail, r.capOf(e)) - 1; i >= 0; i-- {
			r.touch(e, tailHash(blocks[len(blocks)-1], i))
		}
	}
	for i := len(blocks) - 1; i >= 0; i-- {
		r.touch(e, blocks[i])
	}
	return true
}

// match is how many leading blocks name holds.
func (r *refIndex) match(name string, blocks []uint64) int {
	e, ok := r.eps[name]
	if !ok {
		return 0
	}
	n := 0
	for n < len(blocks) && slices.Contains(e.lru, blocks[n]) {
		n++
	}
	return n
}

// lruOf lists slot s's hashes, most recently used first.
func (x *Index) lruOf(s int32) []uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []uint64
	for k := x.eps[s].head; k >= 0; k = x.nodes[k].next {
		out = append(out, x.nodes[k].hash)
	}
	return out
}

// modelRun drives an Index and a refIndex with the same operations, read
// from next (which returns a number below n), and fails at the first
// difference in any endpoint's LRU order or in Match.
type modelRun struct {
	t      testing.TB
	x      *Index
	ref    *refIndex
	names  []string
	blocks []uint64
}

func newModelRun(t testing.TB, endpoints, capacity int) *modelRun {
	m := &modelRun{t: t, x: NewIndex(capacity), ref: newRefIndex(capacity)}
	for i := range endpoints {
		m.names = append(m.names, fmt.Sprint("ep", i))
	}
	return m
}

// prompt builds a prompt of n blocks: a shared prefix of base blocks, then
// blocks of conversation conv, so prompts share prefixes, extend each other
// and collide on purpose (repeated hashes within one prompt included when
// dup is set).
func (m *modelRun) prompt(base, conv, n int, dup bool) []uint64 {
	m.blocks = m.blocks[:0]
	for i := range n {
		switch {
		case i < base:
			m.blocks = append(m.blocks, uint64(1000+i))
		case dup && i%3 == 2:
			m.blocks = append(m.blocks, m.blocks[i/2])
		default:
			m.blocks = append(m.blocks, uint64(conv<<16+i))
		}
	}
	return m.blocks
}

func (m *modelRun) step(step int, next func(n int) int) {
	t, x, ref := m.t, m.x, m.ref
	name := m.names[next(len(m.names))]
	switch op := next(16); {
	case op < 9: // record a prompt, sometimes with a tail
		x.Add(name)
		if _, ok := ref.eps[name]; !ok {
			ref.eps[name] = &refEndpoint{}
		}
		blocks := m.prompt(next(6), next(5), next(24), next(8) == 0)
		tail := 0
		if next(4) == 0 {
			tail = next(12)
		}
		if got, want := x.RecordTail(name, blocks, tail), ref.recordTail(name, blocks, tail); got != want {
			t.Fatalf("step %d: RecordTail(%s) = %v, want %v", step, name, got, want)
		}
	case op < 10:
		x.Remove(name)
		delete(ref.eps, name)
	case op < 12:
		c := next(30)
		if x.SetCapacity(name, c) {
			e := ref.eps[name]
			e.capacity = c
			ref.trim(e)
		}
	case op < 13:
		c := 1 + next(40)
		x.SetDefaultCapacity(c)
		ref.defaultCap = c
		for _, e := range ref.eps {
			ref.trim(e)
		}
	default:
		blocks := m.prompt(next(6), next(5), next(24), next(8) == 0)
		out := x.Match(blocks, nil)
		for n, s := range x.byName {
			if got, want := out[s], ref.match(n, blocks); got != want {
				t.Fatalf("step %d: %s matched %d of %v, want %d", step, n, got, blocks, want)
			}
		}
	}
	if len(x.byName) != len(ref.eps) {
		t.Fatalf("step %d: %d endpoints, want %d", step, len(x.byName), len(ref.eps))
	}
	for n, s := range x.byName {
		if got, want := x.lruOf(s), ref.eps[n].lru; !slices.Equal(got, want) {
			t.Fatalf("step %d: %s holds %v, want %v", step, n, got, want)
		}
	}
}

// The index against the reference model, for pools inside and outside the
// holder mask's 64 slots.
func TestIndexAgainstModel(t *testing.T) {
	for _, endpoints := range []int{1, 4, 70} {
		t.Run(fmt.Sprint(endpoints, " endpoints"), func(t *testing.T) {
			r := rand.New(rand.NewPCG(9, uint64(endpoints)))
			m := newModelRun(t, endpoints, 20)
			for step := range 5000 {
				m.step(step, r.IntN)
				if step%100 == 0 {
					mustCheck(t, m.x)
				}
			}
			mustCheck(t, m.x)
		})
	}
}

func FuzzIndexAgainstModel(f *testing.F) {
	f.Add(uint8(3), uint8(20), []byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09"))
	f.Add(uint8(1), uint8(4), []byte("record record record match"))
	f.Fuzz(func(t *testing.T, endpoints, capacity uint8, ops []byte) {
		m := newModelRun(t, 1+int(endpoints)%8, int(capacity)%40)
		next := func(n int) int {
			if len(ops) == 0 {
				return 0
			}
			var v uint16
			if len(ops) >= 2 {
				v = binary.LittleEndian.Uint16(ops)
				ops = ops[2:]
			} else {
				v, ops = uint16(ops[0]), nil
			}
			return int(v) % n
		}
		for step := 0; len(ops) > 0 && step < 500; step++ {
			m.step(step, next)
		}
		mustCheck(t, m.x)
	})
}
