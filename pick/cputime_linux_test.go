package pick

import (
	"runtime"
	"syscall"
	"testing"
)

// cpuClock reports the calling thread's CPU time per op beside wall time:
// on a shared machine wall time includes waiting for a core.
type cpuClock struct{ t0 int64 }

func threadCPUNanos() int64 {
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func startCPU() cpuClock {
	runtime.LockOSThread()
	return cpuClock{t0: threadCPUNanos()}
}

func (c cpuClock) stop(b *testing.B) {
	d := threadCPUNanos() - c.t0
	runtime.UnlockOSThread()
	if b.N > 0 && d > 0 {
		b.ReportMetric(float64(d)/float64(b.N), "cpu-ns/op")
	}
}
