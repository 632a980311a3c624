package cache

import (
	"encoding/binary"
	"math/bits"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// Memory accounting, in bytes, used by Stats (measured by
// BenchmarkIndexMemory on amd64, Go 1.26):
//
//   - nodeBytes per (endpoint, block) entry: the node below, 24 bytes, in one
//     slice without pointers, so the garbage collector never scans it;
//   - per distinct block hash, one 24-byte reverse-map entry (tslotBytes) at a
//     load between 3/8 and 3/4: 32 to 64 bytes; Stats counts the table's
//     real size.
//
// A block held by one endpoint costs about 24+48 = 72 bytes; a block shared
// by k endpoints about 24k+48.
const (
	nodeBytes = 24
	slotBytes = 64
)

// node is one (endpoint, block hash) entry. It sits on two lists: its
// endpoint's LRU list (prev, next) and the singly linked list of endpoints
// holding the same hash (hnext), whose head is in the reverse map
// (Index.tab, a table). The reverse map also keeps a bit per holding slot
// below 64, so that Match over pools of up to 64 endpoints never walks the
// holder list.
// maskSlots is how many slots the holder mask covers.
const maskSlots = 64

func slotBit(s int32) uint64 {
	if s < maskSlots {
		return 1 << uint(s)
	}
	return 0
}

type node struct {
	hash  uint64
	prev  int32 // towards the most recently used; -1 at the head
	next  int32 // towards the least recently used; -1 at the tail; free-list link
	hnext int32 // next holder of the same hash; -1 at the end
	slot  int32
}

// lru is one registered endpoint's LRU list.
type lru struct {
	name       string
	used       bool
	head, tail int32 // most and least recently used node; -1 when empty
	n          int   // entries
	capacity   int   // blocks; 0 means the index default
}

// Index is the prefix index of one pool: for every endpoint, an LRU set of
// the block hashes it most likely holds in its KV cache, and a reverse map
// from each hash to the endpoints holding it.
//
// Endpoints are named by address and registered with Add, which returns a
// slot: a small integer, stable until Remove, that indexes the slice Match
// fills. A slot freed by Remove is reused by a later Add, so a caller that
// keeps slots must drop them when it removes the endpoint.
//
// Concurrency: all methods are safe for concurrent use. One sync.RWMutex
// guards the index: Match (once per request) holds the read lock for about a
// microsecond for an 8 KiB prompt; Record (once per request, after the pick)
// holds the read lock alone when the prompt already is the endpoint's most
// recent run, and otherwise the write lock for about as long again. At inference request rates (thousands per second per pool,
// each request taking milliseconds to seconds upstream) the lock is free
// almost always; sharding by hash would instead make every Match take many
// locks, since a prompt's blocks spread over all shards.
type Index struct {
	mu         sync.RWMutex
	defaultCap int
	eps        []lru
	byName     map[string]int32
	freeSlots  []int32
	tab        table // hash -> its holders
	nodes      []node
	freeNode   int32 // head of the free node list, linked by next; -1 when none
	entries    int
}

// NewIndex returns an empty index whose endpoints hold defaultCapacity blocks
// unless SetCapacity says otherwise. defaultCapacity is the pool's
// configured inference.cacheBlocks and must be >= 1; a smaller one is raised
// to 1 block.
func NewIndex(defaultCapacity int) *Index {
	defaultCapacity = max(defaultCapacity, 1)
	return &Index{
		defaultCap: defaultCapacity,
		byName:     make(map[string]int32),
		tab:        newTable(),
		freeNode:   -1,
	}
}

// Add registers endpoint (an address) and returns its slot. Adding an
// endpoint already registered returns its existing slot and keeps its entries.
func (x *Index) Add(endpoint string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	if s, ok := x.byName[endpoint]; ok {
		return int(s)
	}
	var s int32
	if n := len(x.freeSlots); n > 0 {
		s = x.freeSlots[n-1]
		x.freeSlots = x.freeSlots[:n-1]
	} else {
		s = int32(len(x.eps))
		x.eps = append(x.eps, lru{})
	}
	x.eps[s] = newEndpoint(endpoint)
	x.byName[endpoint] = s
	return int(s)
}

func newEndpoint(name string) lru {
	return lru{name: name, used: true, head: -1, tail: -1}
}

// Remove forgets a departed endpoint and every entry it held, freeing its
// slot for reuse. It reports whether the endpoint was registered.
func (x *Index) Remove(endpoint string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	s, ok := x.byName[endpoint]
	if !ok {
		return false
	}
	for x.eps[s].tail >= 0 {
		x.evict(s)
	}
	x.eps[s] = lru{head: -1, tail: -1}
	delete(x.byName, endpoint)
	x.freeSlots = append(x.freeSlots, s)
	return true
}

// SetCapacity sets how many blocks endpoint holds, evicting its least
// recently used entries at once if it holds more. blocks <= 0 restores the
// index default. Use CapacityFromServer to convert num_gpu_blocks. It reports
// whether the endpoint was registered.
func (x *Index) SetCapacity(endpoint string, blocks int) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	s, ok := x.byName[endpoint]
	if !ok {
		return false
	}
	if blocks < 0 {
		blocks = 0
	}
	x.eps[s].capacity = blocks
	for c := x.capacity(s); x.eps[s].n > c; {
		x.evict(s)
	}
	return true
}

// SetDefaultCapacity changes the capacity of every endpoint that SetCapacity
// has not sized, evicting their least recently used entries at once where
// they hold more. blocks must be >= 1, as in NewIndex; a smaller one is
// raised to 1 block.
func (x *Index) SetDefaultCapacity(blocks int) {
	blocks = max(blocks, 1)
	x.mu.Lock()
	defer x.mu.Unlock()
	if blocks == x.defaultCap {
		return
	}
	x.defaultCap = blocks
	for s := range x.eps {
		if !x.eps[s].used {
			continue
		}
		for c := x.capacity(int32(s)); x.eps[s].n > c; {
			x.evict(int32(s))
		}
	}
}

func (x *Index) capacity(s int32) int {
	if c := x.eps[s].capacity; c > 0 {
		return c
	}
	return x.defaultCap
}

// Match reports, for every slot, how many LEADING blocks of the prompt that
// endpoint holds: out[slot] = k means it holds blocks[0..k-1] and not
// blocks[k] (matching stops at the first miss, as a KV cache can only reuse
// an unbroken prefix). The prefix score of an endpoint is out[slot] /
// len(blocks). Free slots read 0.
//
// out is reused: Match resizes it to one entry per slot ever handed out, free
// ones included (allocating only when its capacity is too small), zeroes it
// and returns it. Match does not change recency; Record does. It takes the
// read lock and does not allocate when out is large enough.
func (x *Index) Match(blocks []uint64, out []int) []int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := len(x.eps)
	if cap(out) < n {
		out = make([]int, n)
	}
	out = out[:n]
	clear(out)
	if n <= maskSlots {
		x.matchMask(blocks, out)
		return out
	}
	for i, h := range blocks {
		_, head, ok := x.tab.get(h)
		if !ok {
			break
		}
		advanced := false
		for k := head; k >= 0; k = x.nodes[k].hnext {
			if s := x.nodes[k].slot; out[s] == i {
				out[s] = i + 1
				advanced = true
			}
		}
		if !advanced {
			break
		}
	}
	return out
}

// matchMask is Match for at most 64 slots: alive holds the slots that have
// matched every block so far; a slot leaving it at block i matched i blocks.
// Once one slot is left, matchOne takes over.
func (x *Index) matchMask(blocks []uint64, out []int) {
	alive := ^uint64(0) >> (maskSlots - uint(len(out)))
	if len(out) == 0 {
		return
	}
	for i, h := range blocks {
		j := x.tab.find(h)
		var m uint64
		if j >= 0 {
			m = x.tab.slots[j].mask
		}
		for gone := alive &^ m; gone != 0; gone &= gone - 1 {
			out[bits.TrailingZeros64(gone)] = i
		}
		if alive &= m; alive == 0 {
			return
		}
		if alive&(alive-1) == 0 {
			s := int32(bits.TrailingZeros64(alive))
			out[s] = x.matchOne(blocks, i, s, x.tab.slots[j].head-1)
			return
		}
	}
	for ; alive != 0; alive &= alive - 1 {
		out[bits.TrailingZeros64(alive)] = len(blocks)
	}
}

// matchOne returns how many leading blocks slot s holds, given that it
// holds blocks[0..i] and head starts blocks[i]'s holder list. Blocks
// recorded together sit in order in the slot's LRU list, so the node after
// the current block's is usually the next block's: when its hash is the
// next block's, that settles it without a reverse-map lookup (a node in the
// slot's list with that hash is the slot's entry for it).
func (x *Index) matchOne(blocks []uint64, i int, s int32, head int32) int {
	cur := x.holderNode(head, s)
	for i++; i < len(blocks); i++ {
		h := blocks[i]
		if nx := x.nodes[cur].next; nx >= 0 && x.nodes[nx].hash == h {
			cur = nx
			continue
		}
		j := x.tab.find(h)
		if j < 0 || x.tab.slots[j].mask&slotBit(s) == 0 {
			return i
		}
		cur = x.holderNode(x.tab.slots[j].head-1, s)
	}
	return len(blocks)
}

// holderNode returns slot s's node in the holder list starting at head; s
// must be in it.
func (x *Index) holderNode(head, s int32) int32 {
	k := head
	for x.nodes[k].slot != s {
		k = x.nodes[k].hnext
	}
	return k
}

// Record notes that endpoint now holds blocks (the request was just sent
// there): each block becomes most recently used, new ones evicting the
// endpoint's least recently used entries at capacity. Blocks are touched last
// to first, so the leading blocks of a prompt are the freshest and a prefix
// is evicted from its tail, as vLLM evicts. It reports whether the endpoint
// is registered; recording for an unknown endpoint (one removed while its
// request was in flight) does nothing.
//
// Locking: Record first checks, under the read lock, whether the endpoint's
// most recent entries already are the prompt's blocks in order (the same
// prompt sent to the same endpoint again), in which case recording changes
// nothing and the write lock is never taken.
func (x *Index) Record(endpoint string, blocks []uint64) bool {
	return x.RecordTail(endpoint, blocks, 0)
}

// RecordTail is Record for a prompt longer than the part that was hashed:
// tail more blocks follow blocks. The server caches them too, so the
// endpoint's LRU must age by them as well, or the index would believe the
// endpoint still holds prefixes its server has already evicted. They are
// recorded as opaque entries chained from the last hashed block (the same
// for every prompt with that hashed prefix, as a longer turn of a
// conversation extends the shorter one's tail), older than the hashed
// blocks, so they are evicted first, and at most the endpoint's capacity of
// them. They never match a hashed block, so Match is unaffected. tail <= 0
// is Record.
func (x *Index) RecordTail(endpoint string, blocks []uint64, tail int) bool {
	if len(blocks) == 0 {
		tail = 0
	}
	x.mu.RLock()
	s, ok := x.byName[endpoint]
	done := ok && x.isFront(s, blocks, tail)
	x.mu.RUnlock()
	if !ok || done {
		return ok
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if s, ok = x.byName[endpoint]; ok { // it may have left meanwhile
		x.record(s, blocks, tail)
	}
	return ok
}

// isFront reports whether slot s's most recent entries are, in order,
// blocks and then the tail entries RecordTail would add: then recording
// them again changes nothing. It walks one node per block.
func (x *Index) isFront(s int32, blocks []uint64, tail int) bool {
	nd := x.eps[s].head
	for _, h := range blocks {
		if nd < 0 || x.nodes[nd].hash != h {
			return false
		}
		nd = x.nodes[nd].next
	}
	if tail <= 0 {
		return true
	}
	last := blocks[len(blocks)-1]
	for i := range min(tail, x.capacity(s)) {
		if nd < 0 || x.nodes[nd].hash != tailHash(last, i) {
			return false
		}
		nd = x.nodes[nd].next
	}
	return true
}

// record touches the tail entries, then blocks, last to first, each touch
// hinting the next with the node that preceded it: blocks recorded together
// before are usually still in order, so a prompt held anywhere in the list
// costs one reverse-map lookup per run rather than one per block.
func (x *Index) record(s int32, blocks []uint64, tail int) {
	hint := int32(-1)
	if tail > 0 {
		last := blocks[len(blocks)-1]
		for i := min(tail, x.capacity(s)) - 1; i >= 0; i-- {
			hint = x.touch(s, tailHash(last, i), hint)
		}
	}
	for i := len(blocks) - 1; i >= 0; i-- {
		hint = x.touch(s, blocks[i], hint)
	}
}

// tailHash is the opaque entry for the i-th unhashed block after last.
func tailHash(last uint64, i int) uint64 {
	var b [24]byte
	binary.LittleEndian.PutUint64(b[:8], last)
	binary.LittleEndian.PutUint64(b[8:16], uint64(i))
	copy(b[16:], "tailblk.")
	return xxhash.Sum64(b[:])
}

// Sizes reports, for every slot, how many entries that endpoint holds (its
// share of the index, SGLang's "tree size"). out is reused as in Match.
func (x *Index) Sizes(out []int) []int {
	return x.perSlot(out, func(s int32) int { return x.eps[s].n })
}

// Room reports, for every slot, how many more blocks that endpoint takes
// before it evicts: its capacity less its entries, 0 when full or free.
// out is reused as in Match.
func (x *Index) Room(out []int) []int {
	return x.perSlot(out, func(s int32) int {
		if !x.eps[s].used {
			return 0
		}
		return max(x.capacity(s)-x.eps[s].n, 0)
	})
}

// perSlot fills out with f of every slot under the read lock, reusing out
// as Match does.
func (x *Index) perSlot(out []int, f func(s int32) int) []int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if cap(out) < len(x.eps) {
		out = make([]int, len(x.eps))
	}
	out = out[:len(x.eps)]
	for i := range x.eps {
		out[i] = f(int32(i))
	}
	return out
}

// Stats reports the number of (endpoint, block) entries and the approximate
// bytes the index uses: 24 bytes per allocated entry, the reverse map's
// table (32 to 64 bytes per distinct hash), and a little per endpoint (see
// nodeBytes).
func (x *Index) Stats() (entries int, approxBytes int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	b := cap(x.nodes)*nodeBytes + x.tab.bytes() + len(x.eps)*slotBytes
	return x.entries, b
}

// touch makes hash the most recent entry of slot s, inserting it if needed.
//
// hint is a node that may be hash's (or -1): when it is, in slot s, the
// reverse map is not consulted. touch returns the node that was just before
// hash's in the LRU list (more recent), or -1: recording touches a prompt's
// blocks last to first, and a prompt recorded before left its blocks in
// order, so that node is usually the next block's.
func (x *Index) touch(s int32, hash uint64, hint int32) (next int32) {
	if hint >= 0 && x.nodes[hint].slot == s && x.nodes[hint].hash == hash {
		// One node per (slot, hash): this is hash's.
		next = x.nodes[hint].prev
		x.unlinkLRU(hint)
		x.pushFront(s, hint)
		return next
	}
	bit := slotBit(s)
	if i := x.tab.find(hash); i >= 0 {
		if e := &x.tab.slots[i]; bit == 0 || e.mask&bit != 0 {
			prev := int32(-1)
			for k := e.head - 1; k >= 0; prev, k = k, x.nodes[k].hnext {
				if x.nodes[k].slot != s {
					continue
				}
				if prev >= 0 {
					// Move k to the front of the holder list, so that
					// the next lookup by this endpoint finds it first.
					x.nodes[prev].hnext = x.nodes[k].hnext
					x.nodes[k].hnext = e.head - 1
					e.head = k + 1
				}
				next = x.nodes[k].prev
				x.unlinkLRU(k)
				x.pushFront(s, k)
				return next
			}
		}
	}
	c := x.capacity(s)
	for x.eps[s].n >= c {
		x.evict(s)
	}
	k := x.alloc()
	i := x.tab.insert(hash) // after evict, which moves table entries
	e := &x.tab.slots[i]
	x.nodes[k] = node{hash: hash, slot: s, hnext: e.head - 1}
	e.head = k + 1
	e.mask |= bit
	x.pushFront(s, k)
	x.eps[s].n++
	x.entries++
	return -1
}

// evict removes the least recently used entry of slot s.
func (x *Index) evict(s int32) {
	k := x.eps[s].tail
	x.unlinkLRU(k)
	x.unlinkHash(k)
	x.eps[s].n--
	x.entries--
	x.nodes[k] = node{next: x.freeNode, prev: -1, hnext: -1, slot: -1}
	x.freeNode = k
}

func (x *Index) alloc() int32 {
	if k := x.freeNode; k >= 0 {
		x.freeNode = x.nodes[k].next
		return k
	}
	x.nodes = append(x.nodes, node{})
	return int32(len(x.nodes) - 1)
}

func (x *Index) pushFront(s int32, k int32) {
	ep := &x.eps[s]
	x.nodes[k].prev = -1
	x.nodes[k].next = ep.head
	if ep.head >= 0 {
		x.nodes[ep.head].prev = k
	}
	ep.head = k
	if ep.tail < 0 {
		ep.tail = k
	}
}

func (x *Index) unlinkLRU(k int32) {
	nd := &x.nodes[k]
	ep := &x.eps[nd.slot]
	if nd.prev >= 0 {
		x.nodes[nd.prev].next = nd.next
	} else {
		ep.head = nd.next
	}
	if nd.next >= 0 {
		x.nodes[nd.next].prev = nd.prev
	} else {
		ep.tail = nd.prev
	}
	nd.prev, nd.next = -1, -1
}

// unlinkHash removes node k from its hash's holder list, deleting the
// reverse-map entry when k was the last holder. The list is walked; it is at
// most as long as the number of endpoints.
func (x *Index) unlinkHash(k int32) {
	nd := &x.nodes[k]
	i := x.tab.find(nd.hash)
	e := &x.tab.slots[i]
	e.mask &^= slotBit(nd.slot)
	if e.head-1 == k {
		if nd.hnext < 0 {
			x.tab.remove(i)
			return
		}
		e.head = nd.hnext + 1
		return
	}
	for p := e.head - 1; p >= 0; p = x.nodes[p].hnext {
		if x.nodes[p].hnext == k {
			x.nodes[p].hnext = nd.hnext
			return
		}
	}
}
