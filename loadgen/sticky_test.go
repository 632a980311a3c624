package loadgen

import (
	"math"
	"testing"
)

func TestStickyHitRate(t *testing.T) {
	conv := func(ts int64, ids ...uint64) Request {
		return Request{Timestamp: ts, InputLength: len(ids) * TraceBlockTokens, OutputLength: 1, HashIDs: ids}
	}
	tests := []struct {
		name     string
		reqs     []Request
		servers  int
		capacity int
		want     float64
	}{
		{"second turn hits on its server", []Request{conv(0, 1, 2), conv(1, 1, 2, 3)}, 2, 10, 2.0 / 5},
		{"new conversations spread by blocks written", []Request{conv(0, 1, 2), conv(1, 7, 8), conv(2, 1, 2, 3), conv(3, 7, 8, 9)}, 2, 3, 4.0 / 10},
		{"eviction loses the earlier turn", []Request{conv(0, 1, 2), conv(1, 5, 6), conv(2, 1, 2, 3)}, 1, 2, 0},
		{"the deepest block goes first", []Request{conv(0, 1, 2), conv(1, 5, 6), conv(2, 1, 2, 3)}, 1, 3, 1.0 / 7},
		{"no servers", []Request{conv(0, 1)}, 0, 4, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := StickyHitRate(tc.reqs, tc.servers, tc.capacity, 1)
			if math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("StickyHitRate = %.4f, want %.4f", got, tc.want)
			}
		})
	}
}
