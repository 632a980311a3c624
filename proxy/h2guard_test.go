package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Frames writes the client preface and a request whose header block is
// split into one HEADERS and conts CONTINUATION frames, the last of which
// ends it; empty ones carry no bytes at all.
func h2Frames(t testing.TB, conts int, empty bool) []byte {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "localhost"}, {Name: ":path", Value: "/cont"}, {Name: "x-pad", Value: strings.Repeat("p", 64)}} {
		_ = enc.WriteField(f)
	}
	block := hb.Bytes()
	var out bytes.Buffer
	out.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&out, nil)
	_ = fr.WriteSettings()
	if conts == 0 {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: true})
		return out.Bytes()
	}
	first := block
	if !empty {
		first = block[:len(block)/2]
	}
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndStream: true})
	for i := range conts {
		var frag []byte
		last := i == conts-1
		if !empty && i == 0 {
			frag = block[len(block)/2:]
		}
		_ = fr.WriteContinuation(1, last, frag)
	}
	return out.Bytes()
}

// An empty-CONTINUATION flood ends the connection; a request whose header
// block uses a few CONTINUATION frames, as large headers do, is served.
// Before the guard, x/net kept reading a million empty frames.
func TestH2ContinuationFlood(t *testing.T) {
	addr := backend(t, http2OK())
	p := startProxy(t, simple(addr))
	dial := func() net.Conn {
		c, err := net.Dial("tcp", p.Listener("plain").Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	ok := dial()
	if _, err := ok.Write(h2Frames(t, 3, false)); err != nil {
		t.Fatal(err)
	}
	if status := readH2Status(t, ok); status != "200" {
		t.Fatalf("request with 3 CONTINUATION frames: status %q, want 200", status)
	}

	flood := dial()
	frames := h2Frames(t, 100_000, true)
	_ = flood.SetDeadline(time.Now().Add(5 * time.Second))
	_, werr := flood.Write(frames) // may fail once kvgate closes
	_ = flood.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, rerr := io.Copy(io.Discard, flood)
	var ne net.Error
	if werr == nil && errors.As(rerr, &ne) && ne.Timeout() {
		t.Fatal("connection still open after 100000 empty CONTINUATION frames")
	}
}

// readH2Status reads frames until the response HEADERS of stream 1.
func readH2Status(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	fr := http2.NewFramer(io.Discard, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading response: %v", err)
		}
		if mh, ok := f.(*http2.MetaHeadersFrame); ok && mh.StreamID == 1 {
			return mh.PseudoValue("status")
		}
	}
}

func http2OK() http.Handler { return http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}) }

// The guard's frame walk agrees with x/net's framer for any way the bytes
// are cut into reads.
func FuzzH2Guard(f *testing.F) {
	f.Add(3, false, uint16(1))
	f.Add(40, true, uint16(7))
	f.Add(0, false, uint16(100))
	f.Fuzz(func(t *testing.T, conts int, empty bool, cut uint16) {
		if conts < 0 || conts > 200 || cut == 0 {
			return
		}
		b := h2Frames(t, conts, empty)
		g := &h2Guard{pre: len(h2Preface)}
		var err error
		for rest := b; len(rest) > 0 && err == nil; {
			k := min(int(cut), len(rest))
			err = g.scan(rest[:k])
			rest = rest[k:]
		}
		if want := conts > maxContinuations; (err != nil) != want {
			t.Fatalf("%d CONTINUATION frames: err %v, want error %v", conts, err, want)
		}
		if err == nil && (g.skip != 0 || g.nhdr != 0 || g.pre != 0) {
			t.Fatalf("guard ended mid-frame: skip %d nhdr %d pre %d", g.skip, g.nhdr, g.pre)
		}
	})
}
