package proxy

import (
	"errors"
	"io"
)

// bodyPeek is the request body bytes the core has read ahead of forwarding
// (model rules, prompt extraction, model rewrite). They are read once per
// request, whatever needs them, and replayed in front of the rest of the
// stream, so the body sent upstream is byte-for-byte what the client sent.
type bodyPeek struct {
	buf    []byte    // bytes read so far, in order
	whole  bool      // buf is the entire body
	err    error     // the read error that ended the peek; replayed after buf
	src    io.Reader // the body as it was before the first peek
	replay prefixReader
}

// peekBody returns up to the first n bytes of the request body, reading
// only what earlier peeks have not read yet. scratch, when large enough, is
// used for the first read (callers pass pooled buffers). The returned error
// is a read error other than a clean end of the body.
func (x *Exchange) peekBody(n int, scratch []byte) ([]byte, error) {
	p := &x.peek
	if x.body == nil {
		return nil, nil
	}
	if p.src == nil {
		p.src = x.body
	}
	if want := n - len(p.buf); want > 0 && !p.whole && p.err == nil {
		if x.bodyLen >= 0 {
			want = int(min(int64(want), x.bodyLen-int64(len(p.buf))))
		}
		have := len(p.buf)
		if p.buf == nil && cap(scratch) >= want {
			p.buf = scratch[:want]
		} else {
			p.buf = append(p.buf, make([]byte, want)...)
		}
		k, err := io.ReadFull(p.src, p.buf[have:])
		p.buf = p.buf[:have+k]
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			p.whole = true
		case err != nil:
			p.err = err
		case x.bodyLen >= 0 && int64(len(p.buf)) == x.bodyLen:
			p.whole = true
		}
	}
	p.replay = prefixReader{b: p.buf, rest: p.src, err: p.err}
	if p.whole {
		p.replay.rest = eofReader{}
	}
	x.body = &p.replay
	return p.buf[:min(n, len(p.buf))], p.err
}

// replaceBody makes b the whole request body (after a model rewrite).
func (x *Exchange) replaceBody(b []byte) {
	x.peek.buf, x.peek.whole, x.peek.err = b, true, nil
	x.peek.replay = prefixReader{b: b, rest: eofReader{}}
	x.body = &x.peek.replay
	x.bodyLen = int64(len(b))
}

// prefixReader replays bytes already read, then err if set, then rest.
type prefixReader struct {
	b    []byte
	rest io.Reader
	err  error
}

func (r *prefixReader) Read(p []byte) (int, error) {
	if len(r.b) > 0 {
		n := copy(p, r.b)
		r.b = r.b[n:]
		return n, nil
	}
	if r.err != nil {
		return 0, r.err
	}
	return r.rest.Read(p)
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
