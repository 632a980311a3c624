package proxy

import (
	"io"
	"sync"
)

// Streaming a response body to the client is written once here for every
// engine: one write (and, where the engine flushes, one flush) per upstream
// read, so each server-sent event reaches the client as soon as it arrived,
// without holding a copy buffer while the upstream is silent.

// waitBytes is the size of the buffer a copy reads into while it may wait
// for the upstream: a typical server-sent event fits, so an event arrives
// as one chunk; a read that fills it goes on into a pooled copy buffer while
// data keeps arriving.
const waitBytes = 1 << 10

// copyBufs pools the buffers a copy uses while reads keep filling them.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// chunkSink is where copyWaiting writes: an engine's response body writer.
type chunkSink interface {
	// writeChunk writes p, all of it or an error, and returns how many bytes
	// went out. It is called once per upstream read, in order.
	writeChunk(p []byte) (int, error)
}

// copyWaiting copies src to dst, one writeChunk per read. Each read that
// may block goes into wait (waitBytes, owned by the engine's per-stream
// state); only when a read fills it, so more is likely in hand, does the
// copy go on with a pooled copy buffer, given back at the first short read.
// An idle stream (an SSE stream between events) so holds wait's bytes, not
// a copy buffer: one page less of RSS per idle stream.
//
// It returns the bytes written and nil at EOF, or the first read or write
// error. It must not keep p past writeChunk: the buffers are reused.
func copyWaiting(dst chunkSink, src io.Reader, wait []byte) (int64, error) {
	var written int64
	var bp *[]byte
	defer func() {
		if bp != nil {
			copyBufs.Put(bp)
		}
	}()
	for {
		buf := wait
		if bp != nil {
			buf = *bp
		}
		n, err := src.Read(buf)
		if n > 0 {
			m, werr := dst.writeChunk(buf[:n])
			written += int64(m)
			if werr != nil {
				return written, werr
			}
		}
		if err == io.EOF {
			return written, nil
		}
		if err != nil {
			return written, err
		}
		switch {
		case n == len(buf) && bp == nil:
			bp = copyBufs.Get().(*[]byte)
		case n < len(buf) && bp != nil:
			copyBufs.Put(bp)
			bp = nil
		}
	}
}
