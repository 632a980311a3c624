package pick

import "sync/atomic"

// RecentWindow is how many of a pool's latest picks the load bound weighs.
//
// Why a window of picks and not in-flight requests: in-flight counts are
// small integers at the loads model servers run at (zero to a few per
// endpoint), so a bound of 1.25 × the mean in-flight rounds to 1 or 2 and
// moves a conversation off the server that caches it whenever that server
// has one request more than the others, throwing away the cached prefill for
// nothing (on the Mooncake replay this cost about two points of hit rate). A
// share of the last 256 picks moves smoothly, reflects where traffic and
// cache growth actually went, and is about the same in every kvgate replica
// that sees a random part of the same traffic, so bounded placement agrees
// across replicas. In-flight requests still guard against bursts (see
// bounds.inflightFits).
const RecentWindow = 256

// recentWindow is a ring of the last RecentWindow chosen endpoints; each
// Endpoint's recent counter is how many ring entries name it.
//
// Exactly-once accounting: add swaps the new endpoint into the next entry
// and decrements the endpoint it displaced, so every increment is undone by
// exactly one later displacement however many picks run at once. It takes no
// lock and does not allocate.
type recentWindow struct {
	next atomic.Uint64
	ring [RecentWindow]atomic.Pointer[Endpoint]
}

// add records a pick of e.
func (w *recentWindow) add(e *Endpoint) {
	e.recent.Add(1)
	slot := (w.next.Add(1) - 1) % RecentWindow
	if old := w.ring[slot].Swap(e); old != nil {
		old.recent.Add(-1)
	}
}
