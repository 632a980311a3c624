// Package loadstat holds the latency arithmetic shared by the benchmark
// load clients (benchmarks/tls/hsload, benchmarks/h3/h3load). It owns no I/O.
package loadstat

import "time"

// Percentile returns the nearest-rank q-quantile (0 < q <= 1) of sorted,
// 0 when sorted is empty. sorted must be in ascending order.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Ms converts a duration to milliseconds with microsecond resolution.
func Ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
