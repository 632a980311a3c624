package proxy

import (
	"errors"
	"io"
	"sync"
	"time"
)

// errStreamIdle ends a response stream that was silent for longer than its
// route's timeouts.idle.
var errStreamIdle = errors.New("proxy: upstream stream silent for longer than the route's timeouts.idle")

// idleWatch bounds the silence between two bytes of one response stream to
// a route's timeouts.idle: a timer that every read with data pushes back,
// and that, when it fires, aborts the upstream response (closes the
// HTTP/1.1 connection or the HTTP/2 stream) so that the blocked read returns.
// limits.streamIdleTimeout still bounds every upstream connection; a route's
// idle is useful below it.
//
// The watch is allocated only for routes that set idle. stop must be called
// before the upstream response is released; after it returns the timer
// never touches the response.
type idleWatch struct {
	r     io.Reader
	d     time.Duration
	t     *time.Timer
	mu    sync.Mutex
	up    *upstreamResponse // nil once stopped
	fired bool
}

// watchIdle wraps the body of r, the reply of the exchange's final try, in
// an idleWatch of d. A zero d, an error reply or a reply without a body is
// left as it is.
func (x *Exchange) watchIdle(r *Reply, d time.Duration) {
	if d <= 0 || r != &x.reply || x.up == nil || r.Body == nil {
		return
	}
	w := &idleWatch{r: r.Body, d: d, up: x.up}
	w.t = time.AfterFunc(d, w.fire)
	x.idle = w
	r.Body = w
}

func (w *idleWatch) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if n > 0 && err == nil {
		w.t.Reset(w.d)
	}
	if err != nil {
		// The upstream stream has ended: nothing is left to bound, and the
		// connection must not be closed under a response about to be
		// released whole (a slow client may delay finish).
		if w.stop() && err != io.EOF {
			err = errStreamIdle
		}
	}
	return n, err
}

func (w *idleWatch) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.up != nil {
		w.fired = true
		w.up.abort()
	}
}

// stop disarms the watch and reports whether it cut the stream. A nil
// watch (the route sets no idle) reports false. It may be called more than
// once.
func (w *idleWatch) stop() bool {
	if w == nil {
		return false
	}
	w.t.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.up = nil
	return w.fired
}
