package proxy

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// Peeks by several readers (model rule, prompt extraction) read each body
// byte once and replay the whole body unchanged.
func TestPeekBodyReadsOnceAndReplays(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 10)
	for _, known := range []bool{true, false} {
		src := &countingReader{r: bytes.NewReader(body)}
		x := &Exchange{body: src, bodyLen: -1}
		if known {
			x.bodyLen = int64(len(body))
		}
		a, err := x.peekBody(10, nil)
		if err != nil || string(a) != string(body[:10]) {
			t.Fatalf("first peek %q %v", a, err)
		}
		b, err := x.peekBody(30, make([]byte, 64))
		if err != nil || string(b) != string(body[:30]) || src.n != 30 {
			t.Fatalf("second peek %q %v, %d bytes read from the client", b, err, src.n)
		}
		c, _ := x.peekBody(5, nil)
		if string(c) != string(body[:5]) || src.n != 30 {
			t.Fatalf("shorter peek %q read more (%d)", c, src.n)
		}
		all, err := io.ReadAll(x.body)
		if err != nil || !bytes.Equal(all, body) {
			t.Fatalf("known=%v: replayed body differs (%d bytes, %v)", known, len(all), err)
		}
	}
}

func TestPeekBodyWholeAndErrors(t *testing.T) {
	x := &Exchange{body: bytes.NewReader([]byte("short")), bodyLen: -1}
	if b, err := x.peekBody(100, nil); err != nil || string(b) != "short" || !x.peek.whole {
		t.Fatalf("short body: %q %v whole=%v", b, err, x.peek.whole)
	}
	boom := errors.New("boom")
	x = &Exchange{body: io.MultiReader(bytes.NewReader([]byte("ab")), errReader{boom}), bodyLen: -1}
	if _, err := x.peekBody(10, nil); !errors.Is(err, boom) {
		t.Fatalf("peek error %v", err)
	}
	got, err := io.ReadAll(x.body)
	if string(got) != "ab" || !errors.Is(err, boom) {
		t.Fatalf("replay after an error: %q %v; want the bytes, then the same error", got, err)
	}
	x = &Exchange{body: bytes.NewReader([]byte("abc")), bodyLen: 3}
	x.peekBody(1, nil)
	x.replaceBody([]byte("xyz!"))
	if got, _ := io.ReadAll(x.body); string(got) != "xyz!" || x.bodyLen != 4 {
		t.Fatalf("replaced body %q len %d", got, x.bodyLen)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
