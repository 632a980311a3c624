// Package progress draws a one-line progress bar for long commands (kvgate
// demo, benchmarks/replay) on a terminal, and nothing anywhere else: output
// that goes to a file, a pipe or CI logs stays free of carriage returns.
//
// It must not write anything when its writer is not a terminal, and it must
// not start goroutines: the caller reports progress with Set.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal. Tests may replace it.
var IsTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Bar is a progress bar on one terminal line. A nil *Bar (from New on
// something that is not a terminal) does nothing, so callers need no checks.
// Set may be called from any goroutine.
type Bar struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	last  int
	ended bool
}

// Width is the number of cells of the bar.
const Width = 30

// New returns a bar labelled label drawn on w, or nil when w is not a
// terminal.
func New(w io.Writer, label string) *Bar {
	if !IsTerminal(w) {
		return nil
	}
	b := &Bar{w: w, label: label, last: -1}
	b.Set(0, 1)
	return b
}

// Set draws done of total, redrawing only when a cell fills (and at the end).
func (b *Bar) Set(done, total int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return
	}
	done = min(max(done, 0), max(total, 1))
	fill := Width * done / max(total, 1)
	if fill == b.last && done != total {
		return
	}
	b.last = fill
	fmt.Fprintf(b.w, "\r  %-16s [%s%s] %d/%d", b.label, strings.Repeat("#", fill), strings.Repeat(".", Width-fill), done, total)
}

// End finishes the line: the caller's next output starts on a fresh line.
func (b *Bar) End() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.ended {
		b.ended = true
		fmt.Fprintln(b.w)
	}
}
