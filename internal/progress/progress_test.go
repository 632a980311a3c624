package progress

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestQuietWhenNotATerminal: a buffer, a file and a pipe get no output.
func TestQuietWhenNotATerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var buf bytes.Buffer
	for name, out := range map[string]io.Writer{"buffer": &buf, "file": f, "pipe": w} {
		b := New(out, "x")
		if b != nil {
			t.Errorf("%s: New returned a bar for something that is not a terminal", name)
		}
		b.Set(1, 2) // a nil bar does nothing
		b.End()
	}
	if st, _ := f.Stat(); st.Size() != 0 || buf.Len() != 0 {
		t.Errorf("wrote to a non-terminal: file %d bytes, buffer %q", st.Size(), buf.String())
	}
}

// TestBarOnTerminal draws, skips redraws within a cell and ends the line once.
func TestBarOnTerminal(t *testing.T) {
	old := IsTerminal
	IsTerminal = func(io.Writer) bool { return true }
	defer func() { IsTerminal = old }()
	var buf bytes.Buffer
	b := New(&buf, "run")
	for i := 1; i <= 300; i++ {
		b.Set(i, 300)
	}
	b.End()
	b.End()
	out := buf.String()
	if !strings.Contains(out, "["+strings.Repeat("#", Width)+"] 300/300") {
		t.Errorf("the bar never reached 300/300: %q", out)
	}
	if n := strings.Count(out, "\r"); n > Width+2 {
		t.Errorf("redrew %d times for %d cells", n, Width)
	}
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("End should end the line exactly once: %q", out)
	}
}
