package pick

import (
	"sync"
	"testing"
	"time"
)

// An endpoint holds no TTFT window until its first TTFT; concurrent first
// TTFTs all land in one window.
func TestTTFTWindowMadeOnFirstSample(t *testing.T) {
	e := newEndpoint("10.0.0.1:8000")
	if e.ttft.Load() != nil {
		t.Fatal("a new endpoint holds a TTFT window")
	}
	if q, n := e.TTFTQuantiles(0.5, 0.9); n != 0 || len(q) != 2 || q[0] != 0 {
		t.Fatalf("no samples: %v %d", q, n)
	}
	e.Observe(Outcome{Status: 200}) // no TTFT: no window
	if e.ttft.Load() != nil {
		t.Fatal("an outcome without a TTFT made a window")
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { e.Observe(Outcome{TTFT: time.Duration(i+1) * time.Millisecond}) })
	}
	wg.Wait()
	q, n := e.TTFTQuantiles(0, 1)
	if n != 8 || q[0] != time.Millisecond || q[1] != 8*time.Millisecond {
		t.Fatalf("after 8 concurrent first samples: %v over %d, want [1ms 8ms] over 8", q, n)
	}
}
