package benchcpu

import (
	"runtime"
	"syscall"
)

func lockThread()   { runtime.LockOSThread() }
func unlockThread() { runtime.UnlockOSThread() }

// threadCPUNanos is the calling thread's user and system time (RUSAGE_THREAD).
func threadCPUNanos() int64 {
	var ru syscall.Rusage
	const rusageThread = 1
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
