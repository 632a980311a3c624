package proxy

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/kvgate/kvgate/router"
)

// retryBodyBytes bounds the request body kept for replay. A retry needs the
// body again; it is recorded while it streams to the first endpoint, and a
// body larger than this is never retried (nothing is buffered past the bound).
const retryBodyBytes = 64 << 10

// tryAll sends the request to the pool, retrying by the route's policy
// while nothing has reached the client: Serve has not returned, so no
// response byte was written. Each retry goes to another endpoint when the
// pool has one. timeouts.request bounds every try and backoff together;
// timeouts.backendRequest bounds each try until its response starts.
func (p *Proxy) tryAll(x *Exchange, pl *pool, route *router.Route, first *endpoint) *Reply {
	pol := route.Retry
	perTry := route.Timeouts.BackendRequest.D()
	var rb *replayBody
	if pol != nil {
		pol.Budget.Request()
		if x.body != nil {
			rb = &replayBody{src: x.body}
		}
	}
	var prev *endpoint
	for attempt := 0; ; attempt++ {
		ep := first
		if attempt > 0 || ep == nil {
			ep = pl.pick(prev, x.inf.tokens)
			x.ep = ep
		}
		if ep == nil {
			return x.fail(503, errUnavailable, codeNoReadyEndpoint, "pool "+pl.name+" has no ready endpoint; retry later").
				withHeader("Retry-After", "1")
		}
		now := time.Now()
		if !x.rt.deadline.IsZero() && !now.Before(x.rt.deadline) {
			return requestTimeout(x, route)
		}
		x.rt.tryDeadline = x.rt.deadline
		if perTry > 0 && (x.rt.tryDeadline.IsZero() || now.Add(perTry).Before(x.rt.tryDeadline)) {
			x.rt.tryDeadline = now.Add(perTry)
		}
		var tb *tryBody
		if rb != nil {
			tb = &tryBody{r: rb}
			x.body = tb
		}
		r := p.try(x, ep)
		if pol == nil || attempt >= pol.Attempts || !wantRetry(x, r, pol) {
			return finishRoute(x, r)
		}
		if tb != nil && !tb.detach() {
			return finishRoute(x, r) // body larger than retryBodyBytes: not replayable
		}
		wait := pol.Backoff(attempt+1, rnd())
		if !x.rt.deadline.IsZero() && time.Now().Add(wait).After(x.rt.deadline) {
			return finishRoute(x, r)
		}
		if !pol.Budget.TryRetry() {
			p.metrics.retries.WithLabel("budget_exhausted").Add(1)
			return finishRoute(x, r)
		}
		dropTry(x)
		p.metrics.retries.WithLabel("retried").Add(1)
		x.rt.retries++
		if !sleepCtx(x, wait) {
			return x.fail(499, errInvalidRequest, codeClientClosed, "client closed the request")
		}
		prev = ep
	}
}

// wantRetry reports whether the policy retries this outcome: a status it
// lists, or (with connectFailures) a failure before any response.
func wantRetry(x *Exchange, r *Reply, pol *router.RetryPolicy) bool {
	if x.up != nil {
		return pol.RetryOn(r.Status)
	}
	switch x.errKind {
	case codeUpstreamConnectFailed, codeUpstreamReset, codeUpstreamError:
		return pol.ConnectFailures
	}
	return false
}

// dropTry undoes what a try took for an outcome that is being retried: the
// in-flight count its pick took and the upstream response (its connection is
// discarded, since its body was not read). The retry's pick counts again.
func dropTry(x *Exchange) {
	if x.span.c != nil {
		x.span.endClient(x, x.reply.Status, nil) // tracing.go
	}
	x.release()
	x.ep = nil
	if x.up != nil {
		x.up.done(errRetried)
		x.up = nil
	}
	x.upBody.detach()
	x.upBody = nil
	x.errKind = ""
	x.reply = Reply{Header: x.reply.Header[:0]}
}

// release gives back the in-flight count (and prompt tokens) the pick of
// x.ep took. It runs exactly once per pick: in dropTry before a retry picks
// again, or in finish (which keeps x.ep for the log, metrics and span).
func (x *Exchange) release() {
	if x.ep != nil {
		x.ep.state.End(x.inf.tokens)
	}
}

var errRetried = errors.New("proxy: response discarded for a retry")

func requestTimeout(x *Exchange, route *router.Route) *Reply {
	return x.fail(504, errTimeout, codeRequestTimeout,
		"route "+route.Name+" did not get a response within timeouts.request ("+route.Timeouts.Request.D().String()+")")
}

func sleepCtx(x *Exchange, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	if x.ctx == nil {
		<-t.C
		return true
	}
	select {
	case <-t.C:
		return true
	case <-x.ctx.Done():
		return false
	}
}

// replayBody records the request body as it is first read, up to
// retryBodyBytes, so a retry can send it again. It is read by one try at a
// time (tryBody serialises a try that is being abandoned).
type replayBody struct {
	src  io.Reader
	buf  []byte
	err  error // the source's terminal error (io.EOF at the end)
	over bool  // more than retryBodyBytes was read: not replayable
}

// readAt reads the body from offset off, pulling from the source past the recorded bytes.
func (r *replayBody) readAt(p []byte, off int) (int, error) {
	if off < len(r.buf) {
		return copy(p, r.buf[off:]), nil
	}
	if r.err != nil {
		return 0, r.err
	}
	if r.over {
		return 0, errNotReplayable
	}
	n, err := r.src.Read(p)
	if n > 0 {
		if len(r.buf)+n > retryBodyBytes {
			r.over, r.buf = true, nil
		} else {
			r.buf = append(r.buf, p[:n]...)
		}
	}
	if err != nil {
		r.err = err
	}
	return n, err
}

var errNotReplayable = errors.New("proxy: request body too large to replay (" + strconv.Itoa(retryBodyBytes) + " bytes kept)")

// tryBody is one try's view of a replayBody. detach cuts it off (a
// transport may still read a body after its round trip returned) and tells
// whether the body can be replayed.
type tryBody struct {
	mu   sync.Mutex
	r    *replayBody
	off  int
	dead bool
}

func (t *tryBody) Read(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dead {
		return 0, errRetried
	}
	if t.r.over && t.off > 0 {
		// Past the bound the stream is read straight through, once.
		n, err := t.r.src.Read(p)
		t.off += n
		return n, err
	}
	n, err := t.r.readAt(p, t.off)
	t.off += n
	return n, err
}

func (t *tryBody) detach() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dead = true
	return !t.r.over
}

// tryContext cancels a try's context at its deadline while the try waits
// for response headers; once the response has started, stop disarms it so
// the body streams on (bounded by the idle timeout instead).
type tryContext struct {
	timer  *time.Timer
	cancel context.CancelFunc
}

func newTryContext(parent context.Context, deadline time.Time) (context.Context, *tryContext) {
	tc := &tryContext{cancel: func() {}}
	if deadline.IsZero() {
		return parent, tc
	}
	ctx, cancel := context.WithCancel(parent)
	tc.cancel = cancel
	tc.timer = time.AfterFunc(time.Until(deadline), cancel)
	return ctx, tc
}

// stop disarms the deadline and reports whether it had already fired.
func (tc *tryContext) stop() bool {
	if tc.timer == nil {
		return false
	}
	return !tc.timer.Stop() // fired, or firing: the context is cancelled either way
}
