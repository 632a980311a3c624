// Package loadstat holds the counting and latency arithmetic shared by the benchmark
// load clients (benchmarks/cpu/rateload, benchmarks/tls/hsload, benchmarks/h3/h3load). It owns no I/O.
package loadstat

import (
	"slices"
	"time"
)

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

// Tally is the counts of one load loop (loops never share one), or of a
// whole run once the loops' tallies are added together.
type Tally struct {
	OK, Errs int
	// FirstErr is the first error's text, "" when none.
	FirstErr string
	// Lat holds the latency of every good try.
	Lat []time.Duration
}

// Success records a good try that took d.
func (t *Tally) Success(d time.Duration) {
	t.OK++
	t.Lat = append(t.Lat, d)
}

// Fail records a failed try; the first error's text is kept.
func (t *Tally) Fail(err error) {
	t.Errs++
	if t.FirstErr == "" {
		t.FirstErr = err.Error()
	}
}

// Add adds o's counts and latencies to t; t keeps its own first error when
// it has one.
func (t *Tally) Add(o Tally) {
	t.OK += o.OK
	t.Errs += o.Errs
	if t.FirstErr == "" {
		t.FirstErr = o.FirstErr
	}
	t.Lat = append(t.Lat, o.Lat...)
}

// PercentilesMs sorts t.Lat and returns its nearest-rank quantiles qs in
// milliseconds (0 for an empty tally).
func (t *Tally) PercentilesMs(qs ...float64) []float64 {
	slices.Sort(t.Lat)
	out := make([]float64, len(qs))
	for i, q := range qs {
		out[i] = Ms(Percentile(t.Lat, q))
	}
	return out
}
