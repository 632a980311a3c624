package router

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvgate/kvgate/config"
)

func TestRetryPolicy(t *testing.T) {
	tab := compileYAML(t, `
routes:
  - {name: r, retry: {attempts: 2, codes: [502, 503], backoff: 10ms}, backends: [{pool: a}]}
  - {name: noconn, retry: {attempts: 1, connectFailures: false}, backends: [{pool: a}]}
  - {name: none, retry: {attempts: 0, codes: [503]}, backends: [{pool: a}]}
  - {name: unset, backends: [{pool: a}]}
`)
	p := tab.Route("r").Retry
	if p == nil || p.Attempts != 2 || !p.ConnectFailures || p.BaseBackoff != 10*time.Millisecond || p.Budget == nil {
		t.Fatalf("policy %+v", p)
	}
	for code, want := range map[int]bool{502: true, 503: true, 500: false, 504: false, 99: false, 600: false, 0: false} {
		if p.RetryOn(code) != want {
			t.Errorf("RetryOn(%d) = %v, want %v", code, !want, want)
		}
	}
	if q := tab.Route("noconn").Retry; q == nil || q.ConnectFailures || q.BaseBackoff != config.DefaultRetryBackoff {
		t.Errorf("noconn policy %+v", q)
	}
	if tab.Route("none").Retry != nil || tab.Route("unset").Retry != nil {
		t.Error("zero attempts or no retry block compiled to a policy")
	}
	var nilPolicy *RetryPolicy
	if nilPolicy.RetryOn(503) {
		t.Error("nil policy retries")
	}
}

// compileRetry substitutes no default: a retry block that skipped
// config.Default keeps its zero values, each with a safe meaning.
func TestRetryWithoutDefaults(t *testing.T) {
	p, err := compileRetry(&config.Retry{Attempts: 1})
	if err != nil || p == nil {
		t.Fatalf("compileRetry: %v, %v", p, err)
	}
	if p.ConnectFailures || p.BaseBackoff != 0 || p.Backoff(3, math.MaxUint64) != 0 {
		t.Errorf("policy %+v: want no connect-failure retries and no backoff", p)
	}
	if p.Budget.ratio != 0 || p.Budget.minRetries != BudgetMinRetries {
		t.Errorf("budget %+v: want only the %d-retry floor", p.Budget, BudgetMinRetries)
	}
}

func TestBackoff(t *testing.T) {
	p := &RetryPolicy{BaseBackoff: 10 * time.Millisecond}
	for _, tc := range []struct {
		attempt int
		ceiling time.Duration
	}{
		{0, 10 * time.Millisecond},
		{1, 10 * time.Millisecond},
		{2, 20 * time.Millisecond},
		{3, 40 * time.Millisecond},
		{4, 80 * time.Millisecond},
		{5, 100 * time.Millisecond}, // capped at 10x
		{60, 100 * time.Millisecond},
	} {
		lo, hi := p.Backoff(tc.attempt, 0), p.Backoff(tc.attempt, math.MaxUint64)
		if lo != tc.ceiling/2 || hi != tc.ceiling {
			t.Errorf("attempt %d: backoff spans [%v, %v], want [%v, %v]", tc.attempt, lo, hi, tc.ceiling/2, tc.ceiling)
		}
		if mid := p.Backoff(tc.attempt, 1<<63); mid <= lo || mid >= hi {
			t.Errorf("attempt %d: jitter midpoint %v outside (%v, %v)", tc.attempt, mid, lo, hi)
		}
	}
}

// fakeClock drives a Budget without sleeping.
type fakeClock struct{ ns int64 }

func (c *fakeClock) now() int64 { return c.ns }

func TestBudget(t *testing.T) {
	clk := &fakeClock{ns: 1000 * int64(time.Second)}
	b := NewBudget(20, 10*time.Second, 3)
	b.now = clk.now

	count := func() int {
		n := 0
		for range 1000 {
			if b.TryRetry() {
				n++
			}
		}
		return n
	}
	// With no traffic only the floor is allowed.
	if got := count(); got != 3 {
		t.Fatalf("idle budget allowed %d retries, want the floor 3", got)
	}
	// 100 requests allow 20% more, on top of the floor already spent.
	for range 100 {
		b.Request()
	}
	if got := count(); got != 20 {
		t.Fatalf("after 100 requests: %d more retries, want 20", got)
	}
	// Half a window later the old counts still apply.
	clk.ns += int64(5 * time.Second)
	if got := count(); got != 0 {
		t.Fatalf("within the window: %d retries, want 0", got)
	}
	// After the window has slid past, the budget is fresh again.
	clk.ns += int64(6 * time.Second)
	if got := count(); got != 3 {
		t.Fatalf("after the window: %d retries, want the floor 3", got)
	}
	var nb *Budget
	if !nb.TryRetry() {
		t.Error("nil budget refused")
	}
}

func BenchmarkBudget(b *testing.B) {
	bud := NewBudget(20, 10*time.Second, 10)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bud.Request()
			bud.TryRetry()
		}
	})
}

// TestBudgetConcurrent runs requests and retries from several goroutines
// within one bucket and checks the cap holds.
func TestBudgetConcurrent(t *testing.T) {
	clk := int64(50 * time.Second)
	b := NewBudget(10, 10*time.Second, 5)
	b.now = func() int64 { return clk }
	const workers, each = 8, 500
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				b.Request()
				if b.TryRetry() {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	// Each check reads the counts before recording, so concurrent callers may
	// overshoot by at most one retry each.
	limit := int64(0.10*workers*each) + 5 + workers
	if got := allowed.Load(); got > limit || got < 5 {
		t.Errorf("%d retries allowed for %d requests, want at most %d", got, workers*each, limit)
	}
}
