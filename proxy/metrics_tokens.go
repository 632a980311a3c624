package proxy

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// tokenMetrics is the kvgate_tokens_total family: tokens reported by the
// usage objects of responses, by listener, route, pool and kind. The zero
// value is ready; like the request series, a series is created once under
// the lock and then updated with atomics.
type tokenMetrics struct {
	mu sync.RWMutex
	m  map[tokenKey]*tokenSeries
}

type tokenKey struct{ listener, route, pool string }

// tokenSeries holds the prompt, completion and cached counters, in tokenKinds order.
type tokenSeries [3]atomic.Uint64

var tokenKinds = [...]string{"prompt", "completion", "cached"}

func (t *tokenMetrics) add(x *Exchange) {
	k := tokenKey{x.listener.name, x.route, x.pool}
	t.mu.RLock()
	s := t.m[k]
	t.mu.RUnlock()
	if s == nil {
		t.mu.Lock()
		if t.m == nil {
			t.m = map[tokenKey]*tokenSeries{}
		}
		if s = t.m[k]; s == nil {
			s = new(tokenSeries)
			t.m[k] = s
		}
		t.mu.Unlock()
	}
	s[0].Add(uint64(x.tokens.Prompt))
	s[1].Add(uint64(x.tokens.Completion))
	s[2].Add(uint64(x.tokens.Cached))
}

func (t *tokenMetrics) write(w io.Writer) {
	fmt.Fprintln(w, "# HELP kvgate_tokens_total Tokens reported by responses' usage objects (prompt, completion, cached prompt tokens).")
	fmt.Fprintln(w, "# TYPE kvgate_tokens_total counter")
	t.mu.RLock()
	defer t.mu.RUnlock()
	keys := make([]tokenKey, 0, len(t.m))
	for k := range t.m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b tokenKey) int {
		return strings.Compare(a.listener+"\x00"+a.route+"\x00"+a.pool, b.listener+"\x00"+b.route+"\x00"+b.pool)
	})
	for _, k := range keys {
		s := t.m[k]
		for i, kind := range tokenKinds {
			fmt.Fprintf(w, "kvgate_tokens_total{listener=%q,route=%q,pool=%q,kind=%q} %d\n", k.listener, k.route, k.pool, kind, s[i].Load())
		}
	}
}
