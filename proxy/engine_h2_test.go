package proxy

import (
	"net/http"
	"strings"
	"testing"
)

// TestAddOwned: the header map keeps its own copies of a reply field's
// name and value (the reply's buffers are reused once it is finished, and
// HTTP/2 may encode the headers after the handler returned), and copies a
// name once at most: a canonical name new to the map, never a name
// CanonicalHeaderKey already rewrote or one the map already holds.
func TestAddOwned(t *testing.T) {
	cases := []struct {
		name, value string
		pre         http.Header
		want        []string
		allocs      float64 // at most, the map insert and value slice included
	}{
		{"Content-Type", "text/event-stream", nil, []string{"text/event-stream"}, 3},
		{"content-type", "text/event-stream", nil, []string{"text/event-stream"}, 2},
		{"x-request-id", "r1", nil, []string{"r1"}, 3},
		{"x-kvgate-endpoint", "10.0.0.1:8000", http.Header{"X-Kvgate-Endpoint": {"a"}}, []string{"a", "10.0.0.1:8000"}, 3},
	}
	for _, c := range cases {
		nb, vb := []byte(c.name), []byte(c.value)
		h := http.Header{}
		for k, v := range c.pre {
			h[k] = append([]string(nil), v...)
		}
		addOwned(h, Field{Name: b2s(nb), Value: b2s(vb)})
		copy(nb, strings.Repeat("x", len(nb))) // the next reply reuses the buffers
		copy(vb, strings.Repeat("x", len(vb)))
		if got := h[http.CanonicalHeaderKey(c.name)]; len(got) != len(c.want) || got[len(got)-1] != c.want[len(c.want)-1] || len(h) != 1 {
			t.Errorf("%s: header map %v after the buffers were reused, want %v under %s", c.name, h, c.want, http.CanonicalHeaderKey(c.name))
		}
		f := Field{Name: string(nb[:0]) + c.name, Value: c.value}
		if n := testing.AllocsPerRun(100, func() {
			h := make(http.Header, 1)
			for k, v := range c.pre {
				h[k] = v[:1:1]
			}
			addOwned(h, f)
		}); n > c.allocs {
			t.Errorf("%s: %v allocations per field, want at most %v", c.name, n, c.allocs)
		}
	}
}
