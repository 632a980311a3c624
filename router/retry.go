package router

import (
	"fmt"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/kvgate/kvgate/config"
)

// Retry limits. The retry settings' defaults are package config's
// (config.DefaultRetryBackoff, config.DefaultRetryBudgetPercent,
// config.DefaultRetryConnectFailures); compileRetry takes them as
// config.Default filled them in.
const (
	// MaxBackoffFactor caps the exponential backoff at this many times the base.
	MaxBackoffFactor = 10
	// BudgetWindow is the sliding window a retry budget counts over.
	BudgetWindow = 10 * time.Second
	// BudgetMinRetries retries are allowed per window whatever the request
	// count, so a quiet route can still retry.
	BudgetMinRetries = 10
)

// RetryPolicy is a compiled retry setting. The proxy decides whether a retry
// is legal (no response byte sent, body replayable); the policy says whether
// it is wanted and how long to wait.
type RetryPolicy struct {
	// Attempts is the most retries after the first try (1 or more).
	Attempts int
	// ConnectFailures retries tries that failed to connect or were reset before a response.
	ConnectFailures bool
	// BaseBackoff is the first backoff; later ones double, up to MaxBackoffFactor times it.
	BaseBackoff time.Duration
	// Codes lists the retried status codes (also tested by RetryOn).
	Codes []int
	// Budget caps retries for this route. Budgets live as long as the table:
	// a reload starts fresh ones.
	Budget *Budget

	codes [8]uint64 // bit set over status codes 100..611
}

// compileRetry compiles a retry block that went through config.Default. It
// substitutes no default: an unset connectFailures does not retry connect
// failures, a zero backoff retries at once, and a zero budgetPercent allows
// only BudgetMinRetries per window.
func compileRetry(c *config.Retry) (*RetryPolicy, error) {
	if c == nil || c.Attempts <= 0 {
		return nil, nil
	}
	p := &RetryPolicy{Attempts: c.Attempts, BaseBackoff: max(c.Backoff.D(), 0)}
	if c.ConnectFailures != nil {
		p.ConnectFailures = *c.ConnectFailures
	}
	for _, code := range c.Codes {
		if code < 100 || code > 599 {
			return nil, fmt.Errorf("code %d is not an HTTP status: use 100-599, e.g. 502, 503", code)
		}
		p.Codes = append(p.Codes, code)
		n := code - 100
		p.codes[n/64] |= 1 << (n % 64)
	}
	pct := c.BudgetPercent
	if pct < 0 {
		return nil, fmt.Errorf("budgetPercent %v is negative: use a share in [0, 100] or more", c.BudgetPercent)
	}
	p.Budget = NewBudget(pct, BudgetWindow, BudgetMinRetries)
	return p, nil
}

// RetryOn reports whether a response status code is one the policy retries.
func (p *RetryPolicy) RetryOn(code int) bool {
	n := code - 100
	if p == nil || n < 0 || n >= 512 {
		return false
	}
	return p.codes[n/64]&(1<<(n%64)) != 0
}

// Backoff returns the wait before retry number attempt (1 is the first
// retry): exponential from BaseBackoff, capped at MaxBackoffFactor times it,
// with "equal jitter": a uniform value in [d/2, d] picked by rnd, a uniform
// random uint64 the caller supplies. attempt < 1 reads as 1.
func (p *RetryPolicy) Backoff(attempt int, rnd uint64) time.Duration {
	base := p.BaseBackoff
	limit := base * MaxBackoffFactor
	d := limit
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 32 {
		if e := base << (attempt - 1); e > 0 && e < limit {
			d = e
		}
	}
	half := uint64(d / 2)
	j, _ := bits.Mul64(rnd, uint64(d)-half+1)
	return time.Duration(half + j)
}

// Budget caps retries at a share of requests over a sliding window: a retry
// is allowed while retries < percent/100 × requests (plus a small floor) over
// the last BudgetWindow. It is lock-free: counts live in per-second buckets
// updated with atomics. Counts racing with a bucket's reset may be lost; the
// cap is approximate by a few requests, never unbounded. Safe for concurrent use.
type Budget struct {
	ratio      float64
	minRetries int64
	slot       int64 // bucket width in nanoseconds
	buckets    []budgetBucket
	now        func() int64 // unix nanoseconds; replaceable in tests
}

type budgetBucket struct {
	epoch   atomic.Int64 // slot number this bucket counts for
	reqs    atomic.Int64
	retries atomic.Int64
	_       [40]byte // keep buckets on separate cache lines
}

// NewBudget returns a budget allowing percent% extra load from retries over
// window (split into 10 buckets), and at least minRetries per window.
func NewBudget(percent float64, window time.Duration, minRetries int) *Budget {
	if window < 10 {
		window = 10
	}
	return &Budget{
		ratio:      percent / 100,
		minRetries: int64(minRetries),
		slot:       int64(window / 10),
		buckets:    make([]budgetBucket, 10),
		now:        func() int64 { return time.Now().UnixNano() },
	}
}

// Request records one original request (not a retry).
func (b *Budget) Request() {
	b.bucket(b.now() / b.slot).reqs.Add(1)
}

// TryRetry reports whether a retry fits in the budget and, if so, records it.
// A nil budget always allows.
func (b *Budget) TryRetry() bool {
	if b == nil {
		return true
	}
	s := b.now() / b.slot
	var reqs, retries int64
	n := int64(len(b.buckets))
	for i := range b.buckets {
		bk := &b.buckets[i]
		if e := bk.epoch.Load(); e > s-n && e <= s {
			reqs += bk.reqs.Load()
			retries += bk.retries.Load()
		}
	}
	if float64(retries) >= b.ratio*float64(reqs)+float64(b.minRetries) {
		return false
	}
	b.bucket(s).retries.Add(1)
	return true
}

// bucket returns the bucket for slot s, resetting it if it held an older slot.
func (b *Budget) bucket(s int64) *budgetBucket {
	bk := &b.buckets[s%int64(len(b.buckets))]
	for {
		e := bk.epoch.Load()
		if e >= s {
			return bk
		}
		if bk.epoch.CompareAndSwap(e, s) {
			bk.reqs.Store(0)
			bk.retries.Store(0)
			return bk
		}
	}
}
