//go:build !linux

package benchcpu

func lockThread()           {}
func unlockThread()         {}
func threadCPUNanos() int64 { return 0 }
