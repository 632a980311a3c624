// Package benchcpu reports a benchmark's CPU time per op beside its wall
// time: on a shared machine wall time includes waiting for a core. It is for
// benchmarks only; it must not be imported by non-test code.
package benchcpu

import "testing"

// Clock measures the calling goroutine's thread CPU time from Start to Stop.
type Clock struct{ t0 int64 }

// Start locks the goroutine to its thread and starts the clock.
func Start() Clock {
	lockThread()
	return Clock{t0: threadCPUNanos()}
}

// Stop unlocks the thread and reports cpu-ns/op (nothing where the platform
// has no per-thread CPU clock).
func (c Clock) Stop(b *testing.B) {
	d := threadCPUNanos() - c.t0
	unlockThread()
	if b.N > 0 && d > 0 && c.t0 > 0 {
		b.ReportMetric(float64(d)/float64(b.N), "cpu-ns/op")
	}
}
