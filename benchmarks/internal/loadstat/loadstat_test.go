package loadstat

import (
	"errors"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i))
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50}, {0.99, 99}, {1, 100}, {0.001, 1}} {
		if got := Percentile(s, tt.q); got != tt.want {
			t.Errorf("Percentile(1..100, %v) = %v, want %v", tt.q, got, tt.want)
		}
	}
}

func TestMs(t *testing.T) {
	if got := Ms(1500 * time.Microsecond); got != 1.5 {
		t.Errorf("Ms(1.5ms) = %v", got)
	}
}

func TestTally(t *testing.T) {
	ms := time.Millisecond
	var a, b Tally
	a.Success(3 * ms)
	a.Fail(errors.New("first"))
	a.Fail(errors.New("second"))
	b.Success(1 * ms)
	b.Success(2 * ms)
	b.Fail(errors.New("other loop"))
	var all Tally
	all.Add(a)
	all.Add(b)
	if all.OK != 3 || all.Errs != 3 || all.FirstErr != "first" {
		t.Fatalf("merged = %+v, want 3 good, 3 errors, first error of the first loop", all)
	}
	if got := all.PercentilesMs(0.5, 1); got[0] != 2 || got[1] != 3 {
		t.Fatalf("p50, p100 = %v, want [2 3]", got)
	}
	var empty Tally
	if got := empty.PercentilesMs(0.99); got[0] != 0 {
		t.Fatalf("empty p99 = %v, want 0", got)
	}
}
