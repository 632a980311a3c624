package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/valyala/fasthttp"

	"github.com/kvgate/kvgate/config"
)

// h1Factory makes fasthttp host clients: one keep-alive pool per endpoint.
type h1Factory struct {
	pc   config.Pool
	lim  config.Limits
	tls  *tls.Config
	dial *dialer
}

func (f *h1Factory) forEndpoint(addr string) roundTripper {
	return &h1Transport{addr: addr, f: f}
}

// newClient is the fasthttp host client of one endpoint.
func (f *h1Factory) newClient(addr string) *fasthttp.HostClient {
	maxConns := f.pc.MaxConnsPerEndpoint
	if maxConns <= 0 {
		maxConns = math.MaxInt32
	}
	hc := &fasthttp.HostClient{
		Addr:                          addr,
		Dial:                          func(a string) (net.Conn, error) { return f.dial.dial(a) },
		IsTLS:                         f.tls != nil,
		TLSConfig:                     f.tls,
		MaxConns:                      maxConns,
		MaxIdleConnDuration:           f.pc.IdleConnTimeout.D(),
		StreamResponseBody:            true,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
		ReadBufferSize:                upstreamHeaderBytes,
		RetryIfErr:                    func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
	}
	return hc
}

// h1Transport is one endpoint's keep-alive pool. Its host client (about
// 1.6 KB) is made on the endpoint's first request: a pool discovered from
// a cluster may list 10,000 endpoints of which a node proxy uses a few.
type h1Transport struct {
	addr string
	f    *h1Factory
	hc   atomic.Pointer[fasthttp.HostClient]
}

func (t *h1Transport) client() *fasthttp.HostClient {
	if hc := t.hc.Load(); hc != nil {
		return hc
	}
	hc := t.f.newClient(t.addr)
	if t.hc.CompareAndSwap(nil, hc) {
		return hc
	}
	return t.hc.Load() // another request made it first; this one never connected
}

func (t *h1Transport) close() {
	if hc := t.hc.Load(); hc != nil {
		hc.CloseIdleConnections()
	}
}

// requestSink adapts fasthttp's request header to headerSink, leaving the
// framing fields to SetBodyStream.
type requestSink struct{ h *fasthttp.RequestHeader }

func (s requestSink) Add(name, value string) {
	if len(name) == 14 && (name == "Content-Length" || name == "content-length") {
		return
	}
	s.h.Add(name, value)
}

func (t *h1Transport) roundTrip(x *Exchange) (*upstreamResponse, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	req.Header.DisableNormalizing()
	req.Header.SetMethod(x.method)
	uri := append(x.scratch[:0], x.upstreamPath()...) // copied by SetRequestURIBytes
	if x.query != "" {
		uri = append(uri, '?')
		uri = append(uri, x.query...)
	}
	req.Header.SetRequestURIBytes(uri)
	req.UseHostHeader = true
	req.Header.SetHost(x.upstreamHost())
	hc := t.client()
	if hc.IsTLS {
		req.URI().SetScheme("https") // fasthttp refuses a TLS HostClient for an http:// URI
	}
	copyRequestHeaders(x, requestSink{&req.Header})
	var cancel *h1Cancel
	if x.ctx != nil && x.ctx.Done() != nil {
		cancel = watchH1(x, req, resp)
	} else if x.body != nil {
		req.SetBodyStream(x.body, int(x.bodyLen))
	}
	var err error
	if d := x.rt.tryDeadline; !d.IsZero() {
		err = hc.DoDeadline(req, resp, d) // bounds the try until its response starts (idleConn)
	} else {
		err = hc.Do(req, resp)
	}
	if cancel != nil {
		cancel, err = cancel.settle(resp, err)
	}
	fasthttp.ReleaseRequest(req)
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		return nil, h1Error(err)
	}
	ur := h1Response(resp, &x.upBuf)
	ur.stream.(*h1Stream).cancel = cancel
	return ur, nil
}

// h1Error gives fasthttp's own errors the standard meaning the core
// classifies by (upstreamError): its timeout is a deadline exceeded, its
// closed connection a reset.
func h1Error(err error) error {
	switch {
	case errors.Is(err, fasthttp.ErrTimeout):
		return fmt.Errorf("%w: %w", err, os.ErrDeadlineExceeded)
	case errors.Is(err, fasthttp.ErrConnectionClosed):
		return fmt.Errorf("%w: %w", err, syscall.ECONNRESET)
	}
	return err
}

// h1Stream is the HTTP/1.1 transport's hold on a response (upstreamStream):
// the pooled fasthttp response, the connection its body streams from, and
// the request's cancel watch. Pooled: no allocation per request.
type h1Stream struct {
	resp   *fasthttp.Response
	conn   *idleConn // the connection while the body streams; nil when the body was read whole
	cancel *h1Cancel // nil when the request's context cannot end
}

var h1Streams = sync.Pool{New: func() any { return new(h1Stream) }}

func (s *h1Stream) abort() {
	if s.conn != nil {
		s.conn.abort()
	}
}

func (s *h1Stream) release(err error) {
	if s.cancel != nil && s.cancel.finish() && err == nil {
		err = context.Canceled // the cancel closed the connection: never pool it
	}
	releaseH1(s.resp, err)
	*s = h1Stream{}
	h1Streams.Put(s)
}

// h1Cancel carries a request's context to an HTTP/1.1 upstream. fasthttp's
// client takes no context, so when the context ends (the HTTP/2 or HTTP/3
// client went away, the mirrors were stopped) the exchange is cut by
// closing its connection: while the response headers are awaited, the
// connection the request was written to; while the body streams, the
// response's (the same one).
//
// The connection is learnt on the goroutine that writes the request:
// h1Cancel is the request's body stream, and fasthttp closes the body stream
// once it is written, after choosing the connection (Response.LocalAddr
// names it) and before flushing the last bytes. A connection is only closed
// while this request owns it: before its first response byte
// (idleConn.waiter) or while its body streams (until done); never once it
// may be back in fasthttp's pool. A connection closed that way fails every
// later read, even of bytes that had already arrived, so fasthttp discards it.
//
// Requests whose context cannot end (the HTTP/1.1 engine's) get none and
// pay nothing.
type h1Cancel struct {
	body io.Reader // the request body; nil when none
	resp *fasthttp.Response
	stop func() bool // unregisters cancel from the context

	mu        sync.Mutex
	state     uint8
	conn      *idleConn // the connection the request was written to
	cancelled bool      // the context ended
	cut       bool      // conn was closed for it
}

const (
	h1Sending   = iota // the request is being written
	h1Waiting          // written to conn; awaiting the response headers
	h1Streaming        // the response body streams from conn
	h1Settled          // over: conn is not this request's any more
)

// watchH1 makes the request's body stream an h1Cancel (an empty one when
// the request has none, framed as fasthttp frames an empty body) and arms
// it on the exchange's context.
func watchH1(x *Exchange, req *fasthttp.Request, resp *fasthttp.Response) *h1Cancel {
	h := &h1Cancel{body: x.body, resp: resp}
	if x.body != nil {
		req.SetBodyStream(h, int(x.bodyLen))
	} else {
		req.SetBodyStream(h, 0)
		if req.Header.IsGet() || req.Header.IsHead() {
			req.Header.Del("Content-Length") // fasthttp sends none for an empty GET or HEAD
		}
	}
	h.stop = context.AfterFunc(x.ctx, h.cancel)
	return h
}

func (h *h1Cancel) Read(p []byte) (int, error) {
	if h.body == nil {
		return 0, io.EOF
	}
	return h.body.Read(p)
}

// Close is called by fasthttp on the writing goroutine once the body is
// written (again by ReleaseRequest when it was never written).
func (h *h1Cancel) Close() error {
	c := connOf(h.resp.LocalAddr())
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != h1Sending {
		return nil
	}
	if h.cancelled {
		return context.Canceled // fasthttp closes the connection, nothing flushed
	}
	h.state, h.conn = h1Waiting, c
	if c != nil {
		c.setWaiter(h)
	}
	return nil
}

func (h *h1Cancel) cancel() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cancelled = true
	switch h.state {
	case h1Waiting:
		h.cut = h.conn != nil && h.conn.abortWaiter(h)
	case h1Streaming:
		if h.conn != nil {
			h.conn.abort()
			h.cut = true
		}
	}
}

// settle records how Do ended, on the round trip's goroutine. It returns
// the h1Cancel to keep while the body streams (nil when there is none),
// and err, or context.Canceled when the context ended before the response
// could be handed on (a streamed body is then closed here, its connection
// discarded; the caller releases resp).
func (h *h1Cancel) settle(resp *fasthttp.Response, err error) (*h1Cancel, error) {
	streaming := err == nil && resp.BodyStream() != nil
	h.mu.Lock()
	if h.conn != nil {
		h.conn.clearWaiter(h)
	}
	cancelled := h.cancelled
	if streaming && !cancelled {
		h.state = h1Streaming
		if h.conn == nil {
			h.conn = connOf(resp.LocalAddr())
		}
		h.mu.Unlock()
		return h, nil
	}
	h.state = h1Settled
	h.mu.Unlock()
	h.stop()
	if err == nil && cancelled {
		err = context.Canceled
		if streaming {
			closeH1Body(resp, err) // the caller releases resp
		}
	}
	return nil, err
}

// finish ends the watch before the response is released and reports
// whether it cut the connection (which then must not be pooled).
func (h *h1Cancel) finish() bool {
	h.stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.state = h1Settled
	return h.cut
}

// h1Response fills ur from resp. A streamed body keeps its connection until
// the response is released, so ur remembers the connection to abort it.
func h1Response(resp *fasthttp.Response, ur *upstreamResponse) *upstreamResponse {
	st := h1Streams.Get().(*h1Stream)
	st.resp = resp
	*ur = upstreamResponse{status: resp.StatusCode(), length: int64(resp.Header.ContentLength()), header: ur.header[:0], stream: st}
	conn := b2s(resp.Header.Peek("Connection"))
	for k, v := range resp.Header.All() {
		name := b2s(k)
		if isHopByHop(name, conn) || name == "Content-Length" || name == "content-length" {
			continue
		}
		ur.header = append(ur.header, Field{name, b2s(v)})
	}
	if tr := resp.Header.Peek("Trailer"); len(tr) > 0 {
		ur.trailerNames = splitList(string(tr))
		ur.trailers = func() []Field {
			out := make([]Field, 0, len(ur.trailerNames))
			for _, n := range ur.trailerNames {
				if v := resp.Header.Peek(n); len(v) > 0 {
					out = append(out, Field{n, string(v)})
				}
			}
			return out
		}
	}
	if ur.length < 0 {
		ur.length = -1
	}
	if s := resp.BodyStream(); s != nil {
		ur.body, st.conn = s, connOf(resp.LocalAddr())
	} else if b := resp.Body(); len(b) > 0 {
		ur.body = bytesBody(b)
		ur.length = int64(len(b))
	} else {
		ur.length = 0
	}
	return ur
}

func releaseH1(resp *fasthttp.Response, err error) {
	closeH1Body(resp, err)
	fasthttp.ReleaseResponse(resp)
}

// closeH1Body ends a response's body stream; a non-nil err discards its
// connection instead of pooling it.
func closeH1Body(resp *fasthttp.Response, err error) {
	if err != nil {
		if c, ok := resp.BodyStream().(fasthttp.ReadCloserWithError); ok {
			_ = c.CloseWithError(err)
		}
	}
	_ = resp.CloseBodyStream()
}

var _ io.Reader = (*limitReader)(nil)

// upstreamHeaderBytes bounds an upstream's response header section. fasthttp
// allocates this much per pooled connection, so it is kept well under the
// client-facing limit: model servers send a handful of short headers.
const upstreamHeaderBytes = 16 << 10
