//go:build !linux

package openai

import "testing"

type cpuClock struct{}

func startCPU() cpuClock { return cpuClock{} }

func (cpuClock) stop(*testing.B) {}
