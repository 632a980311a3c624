package loadgen

import (
	"testing"
	"time"
)

func TestIdealOf(t *testing.T) {
	const tok = TraceBlockTokens
	for _, c := range []struct {
		name     string
		reqs     []Request
		hit      float64
		p50, p99 time.Duration
	}{
		{"empty", nil, 0, 0, 0},
		{"one request caches nothing", []Request{{InputLength: 2 * tok, HashIDs: []uint64{1, 2}}}, 0, 2 * tok * time.Microsecond, 2 * tok * time.Microsecond},
		{"a second turn reuses its whole first turn", []Request{
			{InputLength: 2 * tok, HashIDs: []uint64{1, 2}},
			{InputLength: 3 * tok, HashIDs: []uint64{1, 2, 3}},
		}, 2.0 / 5, tok * time.Microsecond, 2 * tok * time.Microsecond},
		{"a seen block after a miss is not a hit", []Request{
			{InputLength: 2 * tok, HashIDs: []uint64{1, 2}},
			{InputLength: 2 * tok, HashIDs: []uint64{9, 2}},
		}, 0, 2 * tok * time.Microsecond, 2 * tok * time.Microsecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := IdealOf(c.reqs, 0, time.Microsecond)
			if got.HitRate != c.hit || got.TTFTP50 != c.p50 || got.TTFTP99 != c.p99 {
				t.Errorf("IdealOf = %+v, want hit %g p50 %v p99 %v", got, c.hit, c.p50, c.p99)
			}
		})
	}
}
