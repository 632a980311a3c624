package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/kvgate/kvgate/config"
)

// h2Factory shares one net/http transport (HTTP/2 over TLS, or h2c) across a
// pool's endpoints; the transport keeps one connection pool per address.
type h2Factory struct {
	t      *http.Transport
	scheme string
}

func newH2Factory(pc config.Pool, tlsConf *tls.Config, d *dialer) *h2Factory {
	var protos http.Protocols
	scheme := "http"
	if pc.Protocol == "h2c" {
		protos.SetUnencryptedHTTP2(true)
	} else {
		protos.SetHTTP2(true)
		scheme = "https"
	}
	t := &http.Transport{
		DialContext:         func(_ context.Context, _, addr string) (net.Conn, error) { return d.dial(addr) },
		TLSClientConfig:     tlsConf,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     pc.IdleConnTimeout.D(),
		DisableCompression:  true,
		Protocols:           &protos,
		MaxConnsPerHost:     pc.MaxConnsPerEndpoint,
	}
	return &h2Factory{t: t, scheme: scheme}
}

func (f *h2Factory) forEndpoint(addr string) roundTripper {
	return &h2Transport{f: f, addr: addr}
}

type h2Transport struct {
	f    *h2Factory
	addr string
}

func (t *h2Transport) close() { t.f.t.CloseIdleConnections() }

// ownedRequest gathers what the HTTP/2 client sends and hands it strings
// the request owns. net/http's HTTP/2 client keeps header names and values
// after the request is written — HPACK's dynamic table holds them for the
// connection's life and later requests are encoded against them — while
// kvgate's strings alias buffers that the next request reuses (fasthttp's
// header buffer, the pooled Exchange's request id and scratch). Handing those
// over leaked one request's header values into another's and corrupted the
// encoder's table until it panicked. So every field is collected first, then
// copied into one fresh buffer that nothing ever writes again, and the header
// map, method, authority, path and query are views of it: one allocation for
// all the bytes of a request.
type ownedRequest struct {
	fields []Field
	n      int // bytes of every name and value collected
}

// Add collects a field (headerSink); Content-Length is left to the request's
// ContentLength, which the client writes itself.
func (o *ownedRequest) Add(name, value string) {
	if len(name) == 14 && strings.EqualFold(name, "content-length") {
		return
	}
	o.fields = append(o.fields, Field{name, value})
	o.n += len(name) + len(value)
}

// own returns copies of ss (in order) and the collected fields as a header
// map, all backed by one new buffer.
func (o *ownedRequest) own(ss ...*string) http.Header {
	n := o.n
	for _, s := range ss {
		n += len(*s)
	}
	buf := make([]byte, 0, n)
	take := func(s string) string {
		start := len(buf)
		buf = append(buf, s...)
		return b2s(buf[start:len(buf):len(buf)])
	}
	for _, s := range ss {
		*s = take(*s)
	}
	h := make(http.Header, len(o.fields))
	for _, f := range o.fields {
		k := http.CanonicalHeaderKey(take(f.Name)) // a new string when not canonical
		h[k] = append(h[k], take(f.Value))
	}
	return h
}

func (t *h2Transport) roundTrip(x *Exchange) (*upstreamResponse, error) {
	o := ownedRequest{fields: make([]Field, 0, x.hdr.Len()+8)}
	copyRequestHeaders(x, &o)
	method, host, path, query := x.method, x.upstreamHost(), x.upstreamPath(), x.query
	h := o.own(&method, &host, &path, &query)
	u := &url.URL{Scheme: t.f.scheme, Host: t.addr, Opaque: path, RawQuery: query}
	req := &http.Request{
		Method: method, URL: u, Host: host, Header: h,
		Proto: "HTTP/2.0", ProtoMajor: 2, ContentLength: x.bodyLen,
	}
	if x.body != nil {
		x.upBody.detach() // an earlier try's, if dropTry has not cut it
		x.upBody = &h2Body{r: x.body}
		req.Body = x.upBody
		if x.bodyLen < 0 {
			req.ContentLength = -1
		}
	} else {
		req.ContentLength = 0
	}
	ctx := x.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, tc := newTryContext(ctx, x.rt.tryDeadline)
	resp, err := t.f.t.RoundTrip(req.WithContext(ctx))
	if timedOut := tc.stop(); err != nil || timedOut {
		if resp != nil {
			_ = resp.Body.Close()
		}
		tc.cancel()
		if timedOut {
			return nil, context.DeadlineExceeded
		}
		return nil, err
	}
	ur := &upstreamResponse{status: resp.StatusCode, body: resp.Body, length: resp.ContentLength}
	conn := resp.Header.Get("Connection")
	for name, vals := range resp.Header {
		if isHopByHop(name, conn) || name == "Content-Length" {
			continue
		}
		for _, v := range vals {
			ur.header = append(ur.header, Field{name, v})
		}
	}
	if len(resp.Trailer) > 0 {
		for name := range resp.Trailer {
			ur.trailerNames = append(ur.trailerNames, name)
		}
		ur.trailers = func() []Field {
			var out []Field
			for name, vals := range resp.Trailer {
				for _, v := range vals {
					out = append(out, Field{name, v})
				}
			}
			return out
		}
	}
	if resp.ContentLength == 0 {
		ur.body = nil
	}
	ur.stream = &h2Stream{body: resp.Body, tc: tc}
	return ur, nil
}

// h2Stream is the HTTP/2 transport's hold on a response (upstreamStream):
// closing the response body resets the stream.
type h2Stream struct {
	body io.Closer
	tc   *tryContext
}

func (s *h2Stream) abort() { _ = s.body.Close() }

func (s *h2Stream) release(error) {
	_ = s.body.Close()
	s.tc.cancel()
}

// h2Body is a request body as net/http reads it. net/http may go on reading
// it from its own goroutine after RoundTrip returned, even after the
// response ended (a reset stream, an early answer), while the readers
// behind it (limits, peeks, replay) live in the Exchange, which is recycled
// once the request is finished. finish detaches the body first (x.upBody),
// which waits for a read in progress: the HTTP/2 and HTTP/3 engine close the
// client's body before finishing, so that read returns at once; with the
// HTTP/1.1 engine it returns with the client's next bytes or its end.
type h2Body struct {
	mu sync.Mutex
	r  io.Reader // nil once detached
}

var errBodyDetached = errors.New("proxy: request body read after its exchange ended")

func (b *h2Body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.r == nil {
		return 0, errBodyDetached
	}
	return b.r.Read(p)
}

func (b *h2Body) Close() error { return nil }

func (b *h2Body) detach() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.r = nil
	b.mu.Unlock()
}
