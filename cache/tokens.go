package cache

import (
	"encoding/binary"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// This file is the precise side of the package: kvgate's own hash over token
// blocks (TokenSeed, TokenBlocks) and TokenIndex, which keeps, per endpoint,
// the token-block chains a model server reported it caches through its KV
// events (package kvevents decodes them). Engine hashes are never trusted to
// match prompts: each stored block is rehashed from its token ids, chained
// on its parent's own hash, so kvgate's hashes mean the same thing whatever
// hash function, seed or version the engine uses.

// TokenSeed starts an own token-block chain: 0 for the base model, a hash of
// the adapter's name for blocks computed with a LoRA adapter.
func TokenSeed(lora string) uint64 {
	if lora == "" {
		return 0
	}
	// The digest streams prefix and name: the same value as hashing their
	// concatenation, without building it (once per precise-mode request).
	var d xxhash.Digest
	d.Reset()
	d.WriteString("kvgate/cache/tokens/lora/")
	d.WriteString(lora)
	return d.Sum64()
}

// TokenBlockHash is the own hash of one block: xxhash64(le64(parent) ||
// le32(token) for each token). parent is the previous block's own hash, or
// the chain's TokenSeed for the first block.
func TokenBlockHash(parent uint64, tokens []uint32) uint64 {
	var d xxhash.Digest
	d.Reset()
	var buf [8 + 4*64]byte
	binary.LittleEndian.PutUint64(buf[:8], parent)
	n := 8
	for _, t := range tokens {
		if n+4 > len(buf) {
			_, _ = d.Write(buf[:n])
			n = 0
		}
		binary.LittleEndian.PutUint32(buf[n:], t)
		n += 4
	}
	_, _ = d.Write(buf[:n])
	return d.Sum64()
}

// TokenBlocks appends to dst[:0] the own hashes of every full blockSize
// block of tokens, chained from seed, and returns it. A trailing partial
// block has no hash (engines cache only full blocks). blockSize <= 0 hashes
// nothing. It does not allocate when dst has room.
func TokenBlocks(seed uint64, tokens []uint32, blockSize int, dst []uint64) []uint64 {
	dst = dst[:0]
	if blockSize <= 0 {
		return dst
	}
	h := seed
	for i := 0; i+blockSize <= len(tokens); i += blockSize {
		h = TokenBlockHash(h, tokens[i:i+blockSize])
		dst = append(dst, h)
	}
	return dst
}

// TokenIndex is the precise cache state of one pool: for every endpoint the
// own hashes of the blocks its KV events say it holds, and for each own hash
// which endpoints hold it. Endpoints are registered by address (Add returns a
// slot, as in Index).
//
// Each endpoint maps engine hashes to own hashes (to find a stored block's
// parent chain and to apply BlockRemoved), bounded by the capacity given to
// NewTokenIndex: past it the oldest stored entries are forgotten, which only
// ever makes the index under-estimate.
//
// Liveness: events can be missing (the endpoint does not publish, the
// subscriber lost its connection, a gap could not be replayed). Live reports
// whether an endpoint's entries can be trusted now: its subscriber is in
// sequence (SetSynced) and no pick sent to it longer ago than the stale
// window has gone unanswered by an event (Picked, and every applied event).
// Callers fall back to the approximate Index for endpoints that are not live.
//
// Concurrency: every method is safe for concurrent use. Match takes the read
// lock; the event methods take the write lock once per event.
type TokenIndex struct {
	capacity int
	stale    atomic.Int64 // nanoseconds

	mu        sync.RWMutex
	eps       []*tokenEndpoint
	byName    map[string]int32
	freeSlots []int32
	holders   table // own hash -> bit per slot below 64 (mask; head is 1 when used)
	blockSize atomic.Int64
}

// recentPicks is how many prompts sent to an endpoint are remembered
// speculatively (see Speculate).
const recentPicks = 64

// recentPick is one prompt sent to an endpoint: its last own block hash,
// which names its whole chain, its length in blocks, and when the
// speculation expires.
type recentPick struct {
	last uint64
	n    int
	exp  int64
}

type tokenEndpoint struct {
	name   string
	engine map[uint64]uint64 // engine hash -> own hash
	count  map[uint64]int32  // own hash -> engine blocks naming it
	ring   []uint64          // engine hashes in store order, for the bound
	head   int

	recent  [recentPicks]recentPick // speculative: prompts just sent, by their last own hash
	nrecent int

	synced  atomic.Bool
	pending atomic.Int64 // unix ns of the oldest pick not answered by an event; 0 none
	events  atomic.Uint64
	orphans atomic.Uint64
}

// NewTokenIndex returns an empty index keeping at most capacity blocks per
// endpoint (at least 1) and treating picks unanswered for staleNanos as
// stale (see Live; 0 or less: never stale by silence).
func NewTokenIndex(capacity int, staleNanos int64) *TokenIndex {
	x := &TokenIndex{capacity: max(capacity, 1), byName: map[string]int32{}, holders: newTable()}
	x.stale.Store(staleNanos)
	return x
}

// SetStaleAfter changes the stale window (see Live).
func (x *TokenIndex) SetStaleAfter(nanos int64) { x.stale.Store(nanos) }

// BlockSize is the tokens per block the endpoints' events reported (the
// first BlockStored sets it; later events of another size are dropped as
// orphans); 0 until an event arrives.
func (x *TokenIndex) BlockSize() int { return int(x.blockSize.Load()) }

// Add registers endpoint and returns its slot; adding it again returns the
// same slot and keeps its entries.
func (x *TokenIndex) Add(endpoint string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	if s, ok := x.byName[endpoint]; ok {
		return int(s)
	}
	te := &tokenEndpoint{name: endpoint, engine: map[uint64]uint64{}, count: map[uint64]int32{}}
	var s int32
	if n := len(x.freeSlots); n > 0 {
		s = x.freeSlots[n-1]
		x.freeSlots = x.freeSlots[:n-1]
		x.eps[s] = te
	} else {
		s = int32(len(x.eps))
		x.eps = append(x.eps, te)
	}
	x.byName[endpoint] = s
	return int(s)
}

// Remove forgets endpoint and its entries, freeing its slot.
func (x *TokenIndex) Remove(endpoint string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	s, ok := x.byName[endpoint]
	if !ok {
		return
	}
	x.clearLocked(s)
	x.eps[s] = nil
	delete(x.byName, endpoint)
	x.freeSlots = append(x.freeSlots, s)
}

func (x *TokenIndex) ep(s int) *tokenEndpoint {
	if s < 0 || s >= len(x.eps) {
		return nil
	}
	return x.eps[s]
}

// Stored applies a BlockStored event of endpoint slot s: the blocks named by
// engine hashes, whose tokens are tokens (blockSize per block), chained on
// the block the engine calls parent (hasParent false: the chain starts at
// seed, see TokenSeed). A parent the index does not know (its event was
// missed or forgotten) makes the blocks orphans: they are not indexed, since
// their own hashes cannot be computed. It reports how many blocks were
// indexed.
func (x *TokenIndex) Stored(s int, engine []uint64, parent uint64, hasParent bool, tokens []uint32, blockSize int, seed uint64) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	te := x.ep(s)
	if te == nil {
		return 0
	}
	te.answer()
	if blockSize <= 0 || len(tokens) != len(engine)*blockSize {
		te.orphans.Add(uint64(len(engine)))
		return 0
	}
	if bs := x.blockSize.Load(); bs == 0 {
		x.blockSize.Store(int64(blockSize))
	} else if int(bs) != blockSize {
		te.orphans.Add(uint64(len(engine)))
		return 0
	}
	own := seed
	if hasParent {
		p, ok := te.engine[parent]
		if !ok {
			te.orphans.Add(uint64(len(engine)))
			return 0
		}
		own = p
	}
	for i, eh := range engine {
		own = TokenBlockHash(own, tokens[i*blockSize:(i+1)*blockSize])
		if old, dup := te.engine[eh]; dup {
			if old == own {
				continue
			}
			x.dropLocked(s, te, eh, old)
		}
		x.addLocked(s, te, eh, own)
	}
	return len(engine)
}

func (x *TokenIndex) addLocked(s int, te *tokenEndpoint, eh, own uint64) {
	if len(te.engine) >= x.capacity {
		x.evictOldestLocked(s, te)
	}
	te.engine[eh] = own
	if te.count[own]++; te.count[own] == 1 && s < 64 {
		e := &x.holders.slots[x.holders.insert(own)]
		e.head, e.mask = 1, e.mask|1<<uint(s)
	}
	te.ring = append(te.ring, eh)
	if live := len(te.ring) - te.head; live > 2*x.capacity || te.head > 1024 && te.head > live {
		// Drop the hashes removed since (tombstones) and the consumed front.
		keep := te.ring[:0]
		for _, h := range te.ring[te.head:] {
			if _, ok := te.engine[h]; ok {
				keep = append(keep, h)
			}
		}
		te.ring, te.head = keep, 0
	}
}

// evictOldestLocked forgets the oldest entry still indexed.
func (x *TokenIndex) evictOldestLocked(s int, te *tokenEndpoint) {
	for te.head < len(te.ring) {
		old := te.ring[te.head]
		te.head++
		if o, ok := te.engine[old]; ok {
			x.dropLocked(s, te, old, o)
			return
		}
	}
}

func (x *TokenIndex) dropLocked(s int, te *tokenEndpoint, eh, own uint64) {
	delete(te.engine, eh)
	if te.count[own]--; te.count[own] <= 0 {
		delete(te.count, own)
		if s < 64 {
			x.unhold(own, s)
		}
	}
}

// unhold clears slot s (below 64) from own's holders.
func (x *TokenIndex) unhold(own uint64, s int) {
	if i := x.holders.find(own); i >= 0 {
		e := &x.holders.slots[i]
		if e.mask &^= 1 << uint(s); e.mask == 0 {
			x.holders.remove(i)
		}
	}
}

// Removed applies a BlockRemoved event: the blocks named by engine hashes
// are no longer held. Unknown hashes are ignored.
func (x *TokenIndex) Removed(s int, engine []uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	te := x.ep(s)
	if te == nil {
		return
	}
	te.answer()
	for _, eh := range engine {
		if own, ok := te.engine[eh]; ok {
			x.dropLocked(s, te, eh, own)
		}
	}
}

// Cleared applies AllBlocksCleared (or a reset the subscriber decided on):
// the endpoint holds nothing.
func (x *TokenIndex) Cleared(s int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if te := x.ep(s); te != nil {
		te.answer()
		x.clearLocked(int32(s))
	}
}

func (x *TokenIndex) clearLocked(s int32) {
	te := x.eps[s]
	if s < 64 {
		for own := range te.count {
			x.unhold(own, int(s))
		}
	}
	clear(te.engine)
	clear(te.count)
	te.ring, te.head = te.ring[:0], 0
	te.nrecent = 0
}

// answer records an event from the endpoint: picks so far are answered.
func (te *tokenEndpoint) answer() {
	te.events.Add(1)
	te.pending.Store(0)
}

// SetSynced marks slot s's event stream as in sequence (true) or not
// (disconnected, or a gap that could not be replayed).
func (x *TokenIndex) SetSynced(s int, ok bool) {
	x.mu.RLock()
	te := x.ep(s)
	x.mu.RUnlock()
	if te != nil {
		te.synced.Store(ok)
		if ok {
			te.pending.Store(0)
		}
	}
}

// Picked notes that a request was sent to slot s at now (unix ns): if no
// event arrives from it within the stale window, it stops being Live.
func (x *TokenIndex) Picked(s int, now int64) {
	x.mu.RLock()
	te := x.ep(s)
	x.mu.RUnlock()
	if te != nil && te.pending.Load() == 0 {
		te.pending.CompareAndSwap(0, now)
	}
}

// Live reports whether slot s's entries can be trusted at now (unix ns):
// its stream is in sequence and no pick older than the stale window waits
// for an event.
func (x *TokenIndex) Live(s int, now int64) bool {
	x.mu.RLock()
	te := x.ep(s)
	x.mu.RUnlock()
	return te.live(now, x.stale.Load())
}

func (te *tokenEndpoint) live(now, stale int64) bool {
	if te == nil || !te.synced.Load() {
		return false
	}
	p := te.pending.Load()
	return p == 0 || stale <= 0 || now-p <= stale
}

// Match appends to out[:0], for every slot, how many leading blocks of
// blocks (own hashes, from TokenBlocks) the endpoint holds, and returns it
// (len(out) = the number of slots ever used; free slots read 0). It does not
// allocate once out has room, and takes only the read lock.
func (x *TokenIndex) Match(blocks []uint64, out []int) []int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := len(x.eps)
	if cap(out) < n {
		out = make([]int, n)
	}
	out = out[:n]
	clear(out)
	if len(blocks) == 0 {
		return out
	}
	var alive uint64
	for s := 0; s < n && s < 64; s++ {
		if x.eps[s] != nil {
			alive |= 1 << uint(s)
		}
	}
	for i, h := range blocks {
		var m uint64
		if j := x.holders.find(h); j >= 0 {
			m = x.holders.slots[j].mask
		}
		for gone := alive &^ m; gone != 0; gone &= gone - 1 {
			out[bits.TrailingZeros64(gone)] = i
		}
		if alive &= m; alive == 0 {
			break
		}
	}
	for ; alive != 0; alive &= alive - 1 {
		out[bits.TrailingZeros64(alive)] = len(blocks)
	}
	for s := 64; s < n; s++ {
		te := x.eps[s]
		if te == nil {
			continue
		}
		i := 0
		for i < len(blocks) && te.count[blocks[i]] > 0 {
			i++
		}
		out[s] = i
	}
	return out
}

// TokenStats is one endpoint's precise state, for metrics.
type TokenStats struct {
	Blocks  int    // indexed blocks
	Events  uint64 // events applied
	Orphans uint64 // stored blocks dropped for an unknown parent or a bad block size
	Synced  bool
}

// Stats returns slot s's state.
func (x *TokenIndex) Stats(s int) TokenStats {
	x.mu.RLock()
	defer x.mu.RUnlock()
	te := x.ep(s)
	if te == nil {
		return TokenStats{}
	}
	return TokenStats{Blocks: len(te.engine), Events: te.events.Load(), Orphans: te.orphans.Load(), Synced: te.synced.Load()}
}

// Lookup returns endpoint's slot, or -1 when it is not registered.
func (x *TokenIndex) Lookup(endpoint string) int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if s, ok := x.byName[endpoint]; ok {
		return int(s)
	}
	return -1
}

// SetCapacity changes the per-endpoint bound for entries stored from now on
// (at least 1); endpoints over it shrink as they store more.
func (x *TokenIndex) SetCapacity(blocks int) {
	x.mu.Lock()
	x.capacity = max(blocks, 1)
	x.mu.Unlock()
}

// Held reports whether any endpoint holds the block own (by slot below 64;
// endpoints past 64 are checked one by one).
func (x *TokenIndex) Held(own uint64) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if mask, _, _ := x.holders.get(own); mask != 0 {
		return true
	}
	for s := 64; s < len(x.eps); s++ {
		if te := x.eps[s]; te != nil && te.count[own] > 0 {
			return true
		}
	}
	return false
}

// Speculate records that slot s was just sent (at now, unix ns) a request
// whose prompt's token blocks are own: the endpoint will hold them once it
// has prefilled it, which its events report only later. Until the stale
// window passes, Speculated counts the prompt as held. Only the last
// recentPicks prompts per endpoint are kept, as their last block hash (a
// chain hash names the whole prefix), so recording costs no allocation.
func (x *TokenIndex) Speculate(s int, own []uint64, now int64) {
	stale := x.stale.Load()
	if stale <= 0 || len(own) == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	te := x.ep(s)
	if te == nil {
		return
	}
	r := recentPick{last: own[len(own)-1], n: len(own), exp: now + stale}
	// The same prompt again refreshes its entry rather than taking another
	// (repeats would push other prompts out and lengthen every Speculated
	// scan); a new one takes a free entry, or the one sent longest ago.
	k := min(te.nrecent, recentPicks)
	oldest := 0
	for i := range k {
		e := &te.recent[i]
		if e.last == r.last && e.n == r.n {
			e.exp = max(e.exp, r.exp)
			return
		}
		if e.exp < te.recent[oldest].exp {
			oldest = i
		}
	}
	if k < recentPicks {
		te.recent[k] = r
		te.nrecent++
		return
	}
	te.recent[oldest] = r
}

// Speculated returns how many leading blocks of own slot s is expected to
// hold at now from the prompts recently sent to it (see Speculate): the
// longest of them that own extends.
func (x *TokenIndex) Speculated(s int, own []uint64, now int64) int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	te := x.ep(s)
	if te == nil {
		return 0
	}
	best := 0
	for i := range min(te.nrecent, recentPicks) {
		r := &te.recent[i]
		if r.exp > now && r.n > best && r.n <= len(own) && own[r.n-1] == r.last {
			best = r.n
		}
	}
	return best
}
