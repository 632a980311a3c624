package loadgen

import "container/list"

// StickyHitRate is the hit rate of a reference router that knows each
// request's conversation (SessionKeys with hotShare) and has no load to
// weigh: every conversation stays on the server its first request went to,
// and a new conversation goes to the server that has written the fewest
// blocks so far, so that every cache turns over at the same pace. Each
// server keeps capacity trace blocks (TraceBlockTokens tokens each) in LRU
// order, as a server's prefix cache does; hits are counted in tokens, like
// IdealOf.
//
// It is a reference, not a bound: it shows how much of IdealOf's hit rate
// caches of this size can keep when conversations never move, so that a
// replay's figures can be read against what the cache size allows rather
// than against an unbounded cache. A router can land a little above it by
// luck (a hash that happens to spread long and short conversations well).
func StickyHitRate(reqs []Request, servers, capacity int, hotShare float64) float64 {
	if len(reqs) == 0 || servers < 1 || capacity < 1 {
		return 0
	}
	keys := SessionKeys(reqs, hotShare)
	caches := make([]*lruBlocks, servers)
	for i := range caches {
		caches[i] = newLRUBlocks(capacity)
	}
	home := map[string]int{}
	var hit, all int64
	for n, r := range reqs {
		s, ok := home[keys[n]]
		if !ok {
			s = leastWritten(caches)
			home[keys[n]] = s
		}
		lead := caches[s].touch(r.HashIDs)
		hit += int64(min(lead*TraceBlockTokens, r.InputLength))
		all += int64(r.InputLength)
	}
	return float64(hit) / float64(all)
}

func leastWritten(caches []*lruBlocks) int {
	best := 0
	for i, c := range caches {
		if c.written < caches[best].written {
			best = i
		}
	}
	return best
}

// lruBlocks is an LRU set of trace block ids. A trace id names a block
// together with every block before it, so the id alone is the cache key.
type lruBlocks struct {
	capacity int
	written  int64
	order    *list.List // front: most recently used
	at       map[uint64]*list.Element
}

func newLRUBlocks(capacity int) *lruBlocks {
	return &lruBlocks{capacity: capacity, order: list.New(), at: map[uint64]*list.Element{}}
}

// touch returns how many leading ids of a prompt were cached, then uses
// every id of it, inserting the missing ones and evicting the least recently
// used past capacity. The deepest block is used first, so that it is also
// evicted first, as a server frees a finished request's blocks.
func (c *lruBlocks) touch(ids []uint64) int {
	lead := 0
	for lead < len(ids) && c.at[ids[lead]] != nil {
		lead++
	}
	for i := len(ids) - 1; i >= 0; i-- {
		id := ids[i]
		if e := c.at[id]; e != nil {
			c.order.MoveToFront(e)
			continue
		}
		c.at[id] = c.order.PushFront(id)
		c.written++
		if c.order.Len() > c.capacity {
			old := c.order.Back()
			c.order.Remove(old)
			delete(c.at, old.Value.(uint64))
		}
	}
	return lead
}
