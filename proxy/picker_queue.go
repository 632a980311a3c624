package proxy

import (
	"container/heap"
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvgate/kvgate/config"
)

// waitQueue holds requests of an inference pool while every endpoint is
// saturated, ordered by priority (higher first), then arrival. It is only
// touched on the saturated path; kick is one atomic load otherwise.
//
// A waiter is woken by kick (an in-flight request ended, a scrape landed,
// or the waiter before it got an endpoint), then tries to pick again; if the
// pool is still saturated it waits again in its old place.
type waitQueue struct {
	mu   sync.Mutex
	h    waiterHeap
	seq  uint64
	n    atomic.Int64 // len(h), readable without the lock
	shed atomic.Uint64
	tout atomic.Uint64
}

type waiter struct {
	prio int
	seq  uint64
	ch   chan struct{} // buffered 1: a kick
	at   int           // heap index; -1 when not queued
}

type waiterHeap []*waiter

func (h waiterHeap) Len() int { return len(h) }
func (h waiterHeap) Less(i, j int) bool {
	if h[i].prio != h[j].prio {
		return h[i].prio > h[j].prio
	}
	return h[i].seq < h[j].seq
}
func (h waiterHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].at = i; h[j].at = j }
func (h *waiterHeap) Push(v any)   { w := v.(*waiter); w.at = len(*h); *h = append(*h, w) }
func (h *waiterHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.at = -1
	return w
}

// kick wakes the first waiter, if any.
func (q *waitQueue) kick() {
	if q.n.Load() == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.h) == 0 {
		return
	}
	w := heap.Pop(&q.h).(*waiter)
	q.n.Store(int64(len(q.h)))
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

// wait queues x until a kick, the deadline or the client going away. It
// returns nil to try picking again, or the reply to send (503 on timeout or
// a full queue, 499 when the client left). x.inf.wait keeps its place.
func (q *waitQueue) wait(x *Exchange, prio int, deadline time.Time, in *config.Inference, ip *infPool) *Reply {
	w := x.inf.w
	if w == nil {
		q.mu.Lock()
		if len(q.h) >= max(in.QueueSize, 1) {
			q.mu.Unlock()
			q.tout.Add(1)
			return x.fail(503, errUnavailable, codeQueueFull, "every endpoint of pool "+ip.name+" is saturated and its queue holds "+strconv.Itoa(in.QueueSize)+" requests (inference.queueSize); retry later").
				withHeader("Retry-After", "1")
		}
		q.seq++
		w = &waiter{prio: prio, seq: q.seq, ch: make(chan struct{}, 1), at: -1}
		q.mu.Unlock()
		x.inf.w = w
	}
	q.mu.Lock()
	heap.Push(&q.h, w)
	q.n.Store(int64(len(q.h)))
	q.mu.Unlock()

	ctx := x.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	// Re-check at the scrape interval too: a kick can be missed between our
	// failed pick and the push above.
	recheck := ip.picks().ScrapeInterval()
	t := time.NewTimer(min(time.Until(deadline), recheck))
	defer t.Stop()
	select {
	case <-w.ch:
		return nil
	case <-t.C:
		q.remove(w)
		if time.Now().Before(deadline) {
			return nil
		}
		q.tout.Add(1)
		return x.fail(503, errUnavailable, codeQueueTimeout, "every endpoint of pool "+ip.name+" stayed saturated for "+in.QueueTimeout.D().String()+" (inference.queueTimeout); retry later").
			withHeader("Retry-After", "1")
	case <-ctx.Done():
		q.remove(w)
		return x.fail(499, errInvalidRequest, codeClientClosed, "client closed the request while it was queued")
	}
}

func (q *waitQueue) remove(w *waiter) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if w.at >= 0 {
		heap.Remove(&q.h, w.at)
		q.n.Store(int64(len(q.h)))
	}
	select { // drop a kick that raced with the timeout
	case <-w.ch:
	default:
	}
}

// waiting returns how many requests are queued.
func (q *waitQueue) waiting() int64 { return q.n.Load() }
