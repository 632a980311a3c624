package proxy

import (
	"crypto/tls"
	"io"
	"math"
	"net"

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
	return &h1Transport{hc: hc}
}

type h1Transport struct {
	hc *fasthttp.HostClient
}

func (t *h1Transport) close() { t.hc.CloseIdleConnections() }

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
	if t.hc.IsTLS {
		req.URI().SetScheme("https") // fasthttp refuses a TLS HostClient for an http:// URI
	}
	copyRequestHeaders(x, requestSink{&req.Header})
	if x.body != nil {
		req.SetBodyStream(x.body, int(x.bodyLen))
	}
	var err error
	if d := x.rt.tryDeadline; !d.IsZero() {
		err = t.hc.DoDeadline(req, resp, d) // bounds the try until its response starts (idleConn)
	} else {
		err = t.hc.Do(req, resp)
	}
	fasthttp.ReleaseRequest(req)
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		return nil, err
	}
	return h1Response(resp, &x.upBuf), nil
}

// h1Response fills ur from resp. A streamed body keeps its connection until
// the response is released, so ur remembers the connection to abort it.
func h1Response(resp *fasthttp.Response, ur *upstreamResponse) *upstreamResponse {
	*ur = upstreamResponse{status: resp.StatusCode(), length: int64(resp.Header.ContentLength()), header: ur.header[:0], h1: resp}
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
		ur.body, ur.conn = s, connOf(resp.LocalAddr())
	} else if b := resp.Body(); len(b) > 0 {
		ur.body = bytesBody(b)
		ur.length = int64(len(b))
	} else {
		ur.length = 0
	}
	return ur
}

func releaseH1(resp *fasthttp.Response, err error) {
	if err != nil {
		if c, ok := resp.BodyStream().(fasthttp.ReadCloserWithError); ok {
			_ = c.CloseWithError(err)
		}
	}
	_ = resp.CloseBodyStream()
	fasthttp.ReleaseResponse(resp)
}

var _ io.Reader = (*limitReader)(nil)

// upstreamHeaderBytes bounds an upstream's response header section. fasthttp
// allocates this much per pooled connection, so it is kept well under the
// client-facing limit: model servers send a handful of short headers.
const upstreamHeaderBytes = 16 << 10
