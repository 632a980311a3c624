package sim

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// BlockHashes returns the chained hash of every full BlockChars-byte block of
// text, seeded by model and salt, as described in the package comment. A
// trailing partial block has no hash. It is safe for concurrent use.
func BlockHashes(model, salt, text string) []uint64 {
	n := len(text) / BlockChars
	if n == 0 {
		return nil
	}
	out := make([]uint64, n)
	d := xxhash.New()
	_, _ = d.WriteString(model)
	_, _ = d.Write([]byte{0})
	_, _ = d.WriteString(salt)
	prev := d.Sum64()
	var buf [8]byte
	for i := range n {
		d.Reset()
		binary.LittleEndian.PutUint64(buf[:], prev)
		_, _ = d.Write(buf[:])
		_, _ = d.WriteString(text[i*BlockChars : (i+1)*BlockChars])
		prev = d.Sum64()
		out[i] = prev
	}
	return out
}

// entry is one hashed block. refs counts running requests holding it; an
// entry with refs == 0 sits in the evictable list.
type entry struct {
	hash       uint64
	refs       int
	prev, next *entry
}

// blockPool is the paged KV pool: private blocks held by running requests,
// hashed blocks (pinned or evictable) and free blocks add up to total.
// It is not safe for concurrent use; the engine's mutex guards it.
type blockPool struct {
	total   int
	private int
	entries map[uint64]*entry
	// head is the least recently used evictable entry, tail the most recent.
	head, tail *entry
	evictable  int

	// Set when KV events are published: the hashes evicted and the indices
	// (into the committed hashes) of the blocks registered since the
	// engine last took them.
	events  bool
	removed []uint64
	stored  []int
}

func newBlockPool(total int) *blockPool {
	return &blockPool{total: total, entries: make(map[uint64]*entry)}
}

// free is the number of blocks neither held nor cached.
func (p *blockPool) free() int { return p.total - p.private - len(p.entries) }

// used is the number of blocks held by running requests.
func (p *blockPool) used() int { return p.private + len(p.entries) - p.evictable }

// usage is used blocks as a fraction of the pool, 0..1.
func (p *blockPool) usage() float64 { return float64(p.used()) / float64(p.total) }

func (p *blockPool) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		p.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		p.tail = e.prev
	}
	e.prev, e.next = nil, nil
	p.evictable--
}

func (p *blockPool) pushTail(e *entry) {
	e.prev, e.next = p.tail, nil
	if p.tail != nil {
		p.tail.next = e
	} else {
		p.head = e
	}
	p.tail = e
	p.evictable++
}

// pin takes a reference on e, taking it off the evictable list if needed.
func (p *blockPool) pin(e *entry) {
	if e.refs == 0 {
		p.unlink(e)
	}
	e.refs++
}

// admit pins the leading hits among hashes[:lookup] and allocates need-hits
// fresh private blocks, evicting least recently used blocks as needed. It
// returns the pinned entries and the fresh count, or ok == false (and changes
// nothing) when the pool cannot hold the request now.
func (p *blockPool) admit(hashes []uint64, lookup, need int) (held []*entry, fresh int, ok bool) {
	hits, pinnedIdle := 0, 0
	for hits < lookup {
		e := p.entries[hashes[hits]]
		if e == nil {
			break
		}
		if e.refs == 0 {
			pinnedIdle++
		}
		hits++
	}
	fresh = need - hits
	if fresh > p.free()+p.evictable-pinnedIdle {
		return nil, 0, false
	}
	held = make([]*entry, hits, len(hashes))
	for i := range hits {
		e := p.entries[hashes[i]]
		p.pin(e)
		held[i] = e
	}
	for p.free() < fresh {
		victim := p.head
		p.unlink(victim)
		delete(p.entries, victim.hash)
		if p.events {
			p.removed = append(p.removed, victim.hash)
		}
	}
	p.private += fresh
	return held, fresh, true
}

// commit registers every full prompt block after the held ones under its
// hash, turning one of the request's private blocks into a hashed block, or
// pinning the block another request registered first (the private duplicate
// stays private until release). It returns the new held list and private count.
func (p *blockPool) commit(held []*entry, private int, hashes []uint64) ([]*entry, int) {
	start := len(held)
	for i, h := range hashes[start:] {
		if e := p.entries[h]; e != nil {
			p.pin(e)
			held = append(held, e)
			continue
		}
		if private == 0 {
			break // cannot happen: need covers every prompt block
		}
		e := &entry{hash: h, refs: 1}
		p.entries[h] = e
		if p.events {
			p.stored = append(p.stored, start+i)
		}
		p.private--
		private--
		held = append(held, e)
	}
	return held, private
}

// release drops a finished request's blocks. Hashed blocks whose last
// reference goes become evictable, the deepest first in eviction order.
func (p *blockPool) release(held []*entry, private int) {
	p.private -= private
	for i := len(held) - 1; i >= 0; i-- {
		e := held[i]
		e.refs--
		if e.refs == 0 {
			p.pushTail(e)
		}
	}
}
