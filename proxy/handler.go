package proxy

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Serve runs the core of one exchange: limits, route, pick, forward. It
// returns the Reply the engine must write; it never writes itself, so
// retries stay possible until the Reply is returned. The engine must call
// Reply.Finish exactly once after writing (Finish tolerates more calls).
func (p *Proxy) Serve(x *Exchange) *Reply {
	x.proxy = p
	ensureRequestID(x)
	s := p.snap.Load()
	// The one path normalisation (pathnorm.go): before the span starts, so
	// that routing, authorization, the upstream, logs and spans share it.
	bad := x.normalizeTarget(s.paths)
	if p.tracing != nil {
		p.tracing.start(x) // tracing.go
	}
	r := bad
	if r == nil {
		r = p.forward(x, s)
	}
	watchUsage(x, r) // usage.go
	r.owner = x
	r.Header = append(r.Header, Field{"X-Request-Id", x.requestID})
	addAltSvc(x, r)
	x.status = r.Status
	// timeouts.request bounds the upstream's stream, never kvgate's own
	// answer: a 504 for that very deadline must reach the client whole.
	if r.Body != nil && !x.rt.deadline.IsZero() && x.up != nil && r == &x.reply {
		r.Body = &deadlineBody{r: r.Body, x: x}
	}
	return r
}

func (p *Proxy) forward(x *Exchange, s *snapshot) *Reply {
	lim := &s.cfg.Limits
	if x.hdr.Len() > lim.MaxHeaders {
		return x.fail(431, errInvalidRequest, codeTooManyHeaders,
			"request has "+strconv.Itoa(x.hdr.Len())+" header fields; the limit is "+strconv.Itoa(lim.MaxHeaders)+" (limits.maxHeaders): send fewer headers")
	}
	if x.bodyLen > lim.MaxBodyBytes {
		return x.fail(413, errInvalidRequest, codeBodyTooLarge, bodyTooLargeMsg(lim.MaxBodyBytes))
	}
	if x.body != nil {
		x.limit = limitReader{r: x.body, max: lim.MaxBodyBytes}
		x.body = &x.limit
	}
	m := s.table.MatchFull(x.listener.name, x)
	route := m.Route
	if route == nil {
		return x.fail(404, errNotFound, codeNoRoute, "no route matches "+x.method+" "+x.Host()+x.path+" on listener "+x.listener.name)
	}
	x.route = route.Name
	if r := redirect(x, m); r != nil {
		return r
	}
	b := route.PickBackend(route.StickyKey(x), rand.Uint64())
	if b == nil {
		return x.fail(500, errInternal, codeNoBackend, "route "+route.Name+" has no backend with a weight above 0")
	}
	x.pool = b.Pool
	if r := p.authorize(s, x); r != nil {
		return r
	}
	pl := s.pools[b.Pool]
	if pl == nil {
		return x.fail(500, errInternal, codeUnknownPool, "route "+route.Name+" names pool "+b.Pool+", which does not exist")
	}
	if r := p.applyRoute(x, s, m, b); r != nil {
		return r
	}
	// An inference pool picks the first endpoint by KV-cache affinity (it
	// reads the prompt, so it runs before tryAll wraps the body for replay);
	// retries fall back to the pool's balancer.
	var first *endpoint
	if ip := p.infer.get(pl.name); ip != nil {
		var r *Reply
		if first, r = p.pickInference(x, ip, route); r != nil {
			return r
		}
	}
	r := p.tryAll(x, pl, route, first)
	x.watchIdle(r, route.Timeouts.Idle.D())
	return x.inf.annotate(r)
}

// try sends the request to ep, which its pick counted in flight as x.ep,
// and turns the outcome into a Reply.
func (p *Proxy) try(x *Exchange, ep *endpoint) *Reply {
	if x.span.s != nil {
		x.span.startClient(x, ep) // tracing.go
	}
	up, err := ep.rt.roundTrip(x)
	if err != nil {
		ep.state.ObserveConnect(isDialError(err))
		r := upstreamError(x, err)
		if x.span.c != nil {
			x.span.endClient(x, 0, err)
		}
		return r
	}
	ep.state.ObserveConnect(false)
	x.up = up
	r := &x.reply
	r.Status = up.status
	r.Header = append(r.Header[:0], up.header...)
	r.Body = up.body
	r.Length = up.length
	r.TrailerNames = up.trailerNames
	r.Trailers = up.trailers
	return r
}

func isDialError(err error) bool {
	var de *dialError
	return errors.As(err, &de)
}

// upstreamError maps a failed round trip to a status: connect or reset 502,
// timeout 504, body over the limit 413, client gone 499.
func upstreamError(x *Exchange, err error) *Reply {
	var de *dialError
	var ne net.Error
	var ie *identityError
	switch {
	case errors.As(err, &ie):
		return identityFailure(x, ie)
	case errors.Is(err, errBodyTooLarge):
		return x.fail(413, errInvalidRequest, codeBodyTooLarge, bodyTooLargeMsg(x.limit.max))
	case x.ctx != nil && x.ctx.Err() != nil:
		return x.fail(499, errInvalidRequest, codeClientClosed, "client closed the request")
	case errors.As(err, &de):
		return x.fail(502, errUpstream, codeUpstreamConnectFailed, "could not connect to "+x.ep.addr+" in pool "+x.pool+": "+de.err.Error())
	case errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return x.fail(504, errTimeout, codeUpstreamTimeout, "endpoint "+x.ep.addr+" in pool "+x.pool+" did not answer in time")
	case errors.Is(err, syscall.ECONNRESET):
		return x.fail(502, errUpstream, codeUpstreamReset, "endpoint "+x.ep.addr+" in pool "+x.pool+" closed the connection")
	default:
		return x.fail(502, errUpstream, codeUpstreamError, "endpoint "+x.ep.addr+" in pool "+x.pool+": "+err.Error())
	}
}

func bodyTooLargeMsg(limit int64) string {
	return "request body is larger than " + strconv.FormatInt(limit, 10) + " bytes (limits.maxBodyBytes): send a smaller body or raise the limit"
}

// fail records the error kind and returns an error reply.
func (x *Exchange) fail(status int, typ errorType, code errorCode, msg string) *Reply {
	x.errKind = code
	r := errorReply(status, typ, code, msg)
	return r
}

// finish is the one place a request's accounting happens: in-flight counts,
// the upstream connection, tokens, metrics, the access log and the span.
// Reply.Finish calls it once.
func (x *Exchange) finish(err error, n int64) {
	x.release()
	idled := x.idle.stop()
	if x.up != nil {
		upErr := err
		if idled && upErr == nil {
			upErr = errStreamIdle // the watch closed the connection: never pool it
		}
		x.up.done(upErr)
	}
	x.upBody.detach() // net/http may still hold it; x is recycled below
	x.inf.end()
	status := x.status
	if err != nil {
		if x.ctx != nil && x.ctx.Err() != nil || isClientGone(err) {
			status = 499
			x.errKind = codeClientClosed
		} else if idled {
			x.errKind = codeUpstreamIdleTimeout
		} else if x.errKind == "" {
			x.errKind = codeStreamAborted
		}
	}
	p := x.proxy
	x.endUsage()             // usage.go: tokens and TTFT for metrics, log and span
	d := time.Since(x.start) // one reading: the outcome, the metrics and the log agree
	x.observeOutcome(status, d)
	p.status.observe(x, status) // status.go
	p.metrics.observe(x, status, d)
	p.access.log(x, status, n, d, err)
	if x.span.c != nil {
		x.span.endClient(x, x.reply.Status, err) // tracing.go
	}
	if x.span.s != nil {
		x.span.end(x, status, err) // tracing.go
	}
	releaseExchange(x)
}

// isClientGone reports write errors that mean the client went away.
func isClientGone(err error) bool {
	return errors.Is(err, errClientGone) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, context.Canceled)
}

var errClientGone = errors.New("proxy: client went away")
