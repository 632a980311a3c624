package sim

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
)

// job is one generation request inside the engine.
type job struct {
	text         string // prompt text, for the token ids of KV events
	hashes       []uint64
	promptTokens int
	lookup       int // most blocks that may hit (the last prompt token is always computed)
	need         int // blocks held while running: prompt plus output

	ready    chan struct{} // closed on admission
	admitted bool          // guarded by engine.mu
	held     []*entry
	private  int
	cached   int // cached prompt tokens, set on admission
}

func newJob(hashes []uint64, promptTok, maxTokens int) *job {
	return &job{
		hashes:       hashes,
		promptTokens: promptTok,
		lookup:       min(len(hashes), (promptTok-1)/BlockTokens),
		need:         (promptTok + maxTokens + BlockTokens - 1) / BlockTokens,
		ready:        make(chan struct{}),
	}
}

// engine is the scheduler: a FIFO queue, a bounded running set and the block
// pool. Every method is safe for concurrent use.
type engine struct {
	maxBatch int

	mu      sync.Mutex
	pool    *blockPool
	queue   []*job
	running int
	st      Stats // counters; gauges are filled in by stats()

	runningNow atomic.Int64 // mirror of running for the decode-time model

	kv *KVPublisher // nil: no KV events
}

func newEngine(maxBatch, blocks int) *engine {
	return &engine{maxBatch: maxBatch, pool: newBlockPool(blocks)}
}

// wait queues j and blocks until it is admitted or ctx ends. On error j holds
// nothing and the caller must not call finish.
func (e *engine) wait(ctx context.Context, j *job) error {
	e.mu.Lock()
	e.st.Requests++
	e.queue = append(e.queue, j)
	e.admitLocked()
	e.mu.Unlock()

	select {
	case <-j.ready:
		return nil
	case <-ctx.Done():
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.st.Aborted++
	if j.admitted {
		e.releaseLocked(j)
		return ctx.Err()
	}
	if i := slices.Index(e.queue, j); i >= 0 {
		e.queue = slices.Delete(e.queue, i, i+1)
	}
	e.admitLocked() // the head may have changed
	return ctx.Err()
}

// admitLocked admits queue heads while a slot and their blocks are free.
func (e *engine) admitLocked() {
	for len(e.queue) > 0 && e.running < e.maxBatch {
		j := e.queue[0]
		held, fresh, ok := e.pool.admit(j.hashes, j.lookup, j.need)
		if !ok {
			return
		}
		j.held, j.private, j.admitted = held, fresh, true
		j.cached = len(held) * BlockTokens
		e.queue[0] = nil
		e.queue = e.queue[1:]
		e.running++
		e.runningNow.Store(int64(e.running))
		e.st.PrefixQueryTokens += uint64(j.promptTokens)
		e.st.PrefixHitTokens += uint64(j.cached)
		close(j.ready)
	}
	e.publishLocked(nil)
}

// publishLocked hands the pool's evictions, then the blocks j registered,
// to the KV event publisher as one batch, in engine order.
func (e *engine) publishLocked(j *job) {
	if e.kv == nil {
		return
	}
	p := e.pool
	var evs []kvEvent
	if len(p.removed) > 0 {
		evs = append(evs, kvEvent{removed: true, hashes: p.removed})
		p.removed = nil
	}
	if j != nil {
		for i := 0; i < len(p.stored); {
			a := p.stored[i]
			b := a + 1
			for i++; i < len(p.stored) && p.stored[i] == b; i++ {
				b++
			}
			ev := kvEvent{hashes: j.hashes[a:b], tokens: TokenIDs(j.text[a*BlockChars : b*BlockChars])}
			if a > 0 {
				ev.parent, ev.hasPar = j.hashes[a-1], true
			}
			evs = append(evs, ev)
		}
	}
	p.stored = p.stored[:0]
	e.kv.enqueue(evs)
}

// commit registers j's full prompt blocks after prefill.
func (e *engine) commit(j *job) {
	e.mu.Lock()
	j.held, j.private = e.pool.commit(j.held, j.private, j.hashes)
	e.publishLocked(j)
	e.mu.Unlock()
}

// finish ends an admitted job. reason is "length" or "stop" for a completed
// one and "" for one cut short (client gone or server closing).
func (e *engine) finish(j *job, reason string, outTokens int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch reason {
	case "length":
		e.st.SucceededLength++
	case "stop":
		e.st.SucceededStop++
	default:
		e.st.Aborted++
	}
	if reason != "" {
		e.st.PromptTokens += uint64(j.promptTokens)
		e.st.GenerationTokens += uint64(outTokens)
	}
	e.releaseLocked(j)
}

func (e *engine) releaseLocked(j *job) {
	e.pool.release(j.held, j.private)
	j.held, j.private = nil, 0
	e.running--
	e.runningNow.Store(int64(e.running))
	e.admitLocked()
}

// stats returns a consistent snapshot.
func (e *engine) stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.st
	s.Running = e.running
	s.Waiting = len(e.queue)
	s.NumGPUBlocks = e.pool.total
	s.UsedBlocks = e.pool.used()
	s.CachedBlocks = len(e.pool.entries)
	s.KVCacheUsage = e.pool.usage()
	return s
}

// Stats is a snapshot of the simulator's counters (since New) and gauges.
type Stats struct {
	// Requests counts generation requests that reached the queue.
	Requests uint64
	// SucceededLength and SucceededStop count completed requests by finish reason.
	SucceededLength, SucceededStop uint64
	// Aborted counts requests cut short by their client or by Close.
	Aborted uint64
	// PrefixQueryTokens and PrefixHitTokens are the prompt tokens looked up in
	// the prefix cache and the cached ones among them (vLLM's counters).
	PrefixQueryTokens, PrefixHitTokens uint64
	// PromptTokens and GenerationTokens are summed over completed requests.
	PromptTokens, GenerationTokens uint64

	// Running and Waiting are the requests running and queued now.
	Running, Waiting int
	// NumGPUBlocks is the pool size; UsedBlocks are held by running requests;
	// CachedBlocks carry a hash (held or evictable).
	NumGPUBlocks, UsedBlocks, CachedBlocks int
	// KVCacheUsage is UsedBlocks/NumGPUBlocks, 0..1.
	KVCacheUsage float64
}
