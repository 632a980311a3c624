package openai

import (
	"runtime"
	"syscall"
	"testing"
	"unsafe"
)

// threadCPU returns the CPU time consumed by the calling OS thread.
func threadCPU() int64 {
	var ts syscall.Timespec
	const clockThreadCPUTime = 3 // CLOCK_THREAD_CPUTIME_ID
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano()
}

// cpuClock reports thread CPU nanoseconds per op next to wall ns/op. On a
// shared, overloaded machine wall time includes waiting for a core; CPU time
// does not. Call start before b.Loop and stop after it.
type cpuClock struct{ t0 int64 }

func startCPU() cpuClock {
	runtime.LockOSThread()
	return cpuClock{t0: threadCPU()}
}

func (c cpuClock) stop(b *testing.B) {
	d := threadCPU() - c.t0
	runtime.UnlockOSThread()
	if b.N > 0 {
		b.ReportMetric(float64(d)/float64(b.N), "cpu-ns/op")
	}
}
