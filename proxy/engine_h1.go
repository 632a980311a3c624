package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"
)

// The HTTP/1.1 engine: fasthttp parses requests; handleH1 turns them into
// an Exchange and writes the Reply back, streaming the body with a flush
// after every upstream read when its length is unknown.

func (l *Listener) newH1Server() *fasthttp.Server {
	lim := l.proxy.limits()
	return &fasthttp.Server{
		Handler:                       l.handleH1,
		ErrorHandler:                  l.h1Error,
		Name:                          "",
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		NoDefaultContentType:          true,
		DisablePreParseMultipartForm:  true,
		StreamRequestBody:             true,
		ReadBufferSize:                lim.MaxHeaderBytes,
		ReadTimeout:                   lim.ReadHeaderTimeout.D(),
		IdleTimeout:                   lim.IdleTimeout.D(),
		MaxRequestBodySize:            int(lim.MaxBodyBytes),
		CloseOnShutdown:               true,
		DisableHeaderNamesNormalizing: false,
		Logger:                        nopLogger{},
	}
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

// h1Error answers requests fasthttp could not parse, in the OpenAI error shape.
func (l *Listener) h1Error(ctx *fasthttp.RequestCtx, err error) {
	status, code, msg := 400, codeBadRequest, "request could not be parsed: "+err.Error()
	if _, ok := err.(*fasthttp.ErrSmallBuffer); ok {
		status, code, msg = 431, codeHeadersTooLarge, "request header section is larger than limits.maxHeaderBytes: send smaller headers"
	} else if err == fasthttp.ErrBodyTooLarge {
		status, code, msg = 413, codeBodyTooLarge, bodyTooLargeMsg(l.proxy.limits().MaxBodyBytes)
	}
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentType("application/json")
	ctx.SetBody(errorJSON(errInvalidRequest, code, msg))
	l.proxy.metrics.parseErrors.Add(1)
}

// h1Headers adapts fasthttp's request header to HeaderReader.
type h1Headers struct{ h *fasthttp.RequestHeader }

func (h h1Headers) Get(name string) string { return b2s(h.h.Peek(name)) }
func (h h1Headers) Len() int               { return h.h.Len() }
func (h h1Headers) Each(v FieldVisitor) {
	for name, value := range h.h.All() {
		v.Field(b2s(name), b2s(value))
	}
}

func (l *Listener) handleH1(ctx *fasthttp.RequestCtx) {
	x := acquireExchange(context.Background(), l)
	x.proto = "HTTP/1.1"
	if !ctx.Request.Header.IsHTTP11() {
		x.proto = "HTTP/1.0"
	}
	x.conn = ctx.Conn()
	if tc, ok := ctx.Conn().(interface{ ConnectionState() tls.ConnectionState }); ok {
		x.tls = true
		x.peerID = l.peerID(tc.ConnectionState())
	}
	x.remote = addrPort(ctx.RemoteAddr())
	x.method = b2s(ctx.Method())
	x.host = b2s(ctx.Host())
	// The raw request target (origin-form, absolute-form or *): Serve
	// normalises it (pathnorm.go). fasthttp's ctx.Path() is its own reading.
	x.path, x.query = cut(b2s(ctx.RequestURI()), '?')
	x.hdr = h1Headers{&ctx.Request.Header}
	if cl := ctx.Request.Header.ContentLength(); cl != 0 {
		x.bodyLen = int64(cl)
		if cl < 0 {
			x.bodyLen = -1
		}
		x.body = ctx.RequestBodyStream()
		// The read deadline set for the header must not cut a slow upload.
		_ = ctx.Conn().SetReadDeadline(timeZero)
	}
	r := l.proxy.Serve(x)
	writeH1(ctx, r)
	if l.proxy.draining.Load() {
		ctx.SetConnectionClose()
	}
}

func writeH1(ctx *fasthttp.RequestCtx, r *Reply) {
	ctx.SetStatusCode(r.Status)
	h := &ctx.Response.Header
	for _, f := range r.Header {
		if len(f.Name) == 4 && strings.EqualFold(f.Name, "date") {
			continue // fasthttp writes its own cached Date
		}
		h.Add(f.Name, f.Value)
	}
	if r.Body == nil || ctx.IsHead() {
		if r.Length > 0 && ctx.IsHead() {
			h.SetContentLength(int(r.Length))
		}
		r.Finish(nil, 0)
		return
	}
	for _, n := range r.TrailerNames {
		_ = h.AddTrailer(n)
	}
	o := bodyOuts.Get().(*bodyOut)
	o.r, o.hdr, o.n, o.eof = r, h, 0, false // wait is overwritten before it is read
	ctx.Response.SetBodyStream(o, int(r.Length))
}

// bodyOut is the response body handed to fasthttp. fasthttp reads it until
// EOF (flushing each chunk when the length is unknown) and then closes it,
// with the write error if the client went away; Close finishes the reply.
type bodyOut struct {
	r   *Reply
	hdr *fasthttp.ResponseHeader
	n   int64
	eof bool
	dst io.Writer // fasthttp's body writer, during WriteTo
	// wait is what a read that may block reads into (copyWaiting): an idle
	// stream holds these bytes, not a pooled copy buffer.
	wait [waitBytes]byte
}

func (o *bodyOut) Read(p []byte) (int, error) {
	n, err := o.r.Body.Read(p)
	o.n += int64(n)
	if err == io.EOF {
		o.eof = true
		if o.r.Trailers != nil {
			for _, f := range o.r.Trailers() {
				o.hdr.Set(f.Name, f.Value)
			}
		}
	}
	return n, err
}

// SupportsBodyWriteTo lets fasthttp copy the body with WriteTo: it does
// what Read does (the same reads of the same body, the same trailers).
func (o *bodyOut) SupportsBodyWriteTo() bool { return true }

// WriteTo copies the body to w (fasthttp's chunk framer or fixed-length
// writer) with copyWaiting, so an idle stream holds o.wait, not a copy
// buffer (fasthttp's own copy held a pooled 4 KiB buffer for the whole life
// of the stream, idle or not).
func (o *bodyOut) WriteTo(w io.Writer) (int64, error) {
	o.dst = w
	n, err := copyWaiting(o, o, o.wait[:])
	o.dst = nil
	return n, err
}

// writeChunk is copyWaiting's sink: one write to fasthttp's writer.
func (o *bodyOut) writeChunk(p []byte) (int, error) {
	m, err := o.dst.Write(p)
	if err == nil && m < len(p) {
		err = io.ErrShortWrite
	}
	return m, err
}

// CloseWithError implements fasthttp.ReadCloserWithError. fasthttp calls it
// exactly once per body stream (bodyOut must not also implement io.Closer:
// fasthttp would then call both).
func (o *bodyOut) CloseWithError(err error) error {
	if err == nil && !o.eof && (o.r.Length < 0 || o.n < o.r.Length) {
		err = errClientGone
	}
	o.r.Finish(err, o.n)
	o.r, o.hdr, o.n, o.eof = nil, nil, 0, false // wait needs no clearing
	bodyOuts.Put(o)
	return nil
}

// bodyOuts pools the engine's body streams: no allocation per response.
var bodyOuts = sync.Pool{New: func() any { return new(bodyOut) }}

var (
	_ fasthttp.ReadCloserWithError = (*bodyOut)(nil)
	_ fasthttp.BodyWriterTo        = (*bodyOut)(nil)
	_ chunkSink                    = (*bodyOut)(nil)
)

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	if ua, ok := a.(*net.UDPAddr); ok {
		return ua.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
