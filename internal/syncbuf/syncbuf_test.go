package syncbuf

import (
	"fmt"
	"sync"
	"testing"
)

func TestBufferConcurrentWriteRead(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 100 {
			fmt.Fprintf(&b, "%d\n", i)
		}
	}()
	for range 100 {
		_ = b.String()
	}
	wg.Wait()
	want := ""
	for i := range 100 {
		want += fmt.Sprintf("%d\n", i)
	}
	if got := b.String(); got != want {
		t.Fatalf("String() = %q, want 0..99 one a line", got)
	}
}
