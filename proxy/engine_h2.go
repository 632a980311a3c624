package proxy

import (
	"crypto/tls"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// The HTTP/2 engine: golang.org/x/net/http2 serves connections already
// accepted (h2c by preface, h2 by ALPN); ServeHTTP turns each stream into an
// Exchange and writes the Reply, flushing after every read of a body of
// unknown length.

// h2Headers adapts http.Header to HeaderReader.
type h2Headers http.Header

func (h h2Headers) Get(name string) string {
	if v := h[name]; len(v) > 0 { // already canonical
		return v[0]
	}
	return http.Header(h).Get(name)
}

func (h h2Headers) Len() int {
	n := 0
	for _, v := range h {
		n += len(v)
	}
	return n
}

func (h h2Headers) Each(fv FieldVisitor) {
	for k, vs := range h {
		for _, v := range vs {
			fv.Field(k, v)
		}
	}
}

// h2Copy is a response body's copy state in the HTTP/2 (and HTTP/3)
// engine: copyWaiting's wait buffer and its sink, pooled, so that streaming
// a body allocates nothing of its own.
type h2Copy struct {
	w     http.ResponseWriter
	rc    http.ResponseController // by value: a pointer kept here would be one allocation per response
	flush bool                    // flush after every chunk (length unknown: a stream)
	wait  [waitBytes]byte
}

var h2Copies = sync.Pool{New: func() any { return new(h2Copy) }}

// writeChunk is copyWaiting's sink: a write error, or a flush error, means
// the client went away.
func (c *h2Copy) writeChunk(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil {
		return n, errClientGone
	}
	if c.flush {
		if err := c.rc.Flush(); err != nil {
			return n, errClientGone
		}
	}
	return n, nil
}

// ServeHTTP is the HTTP/2 (and HTTP/3) entry point.
func (l *Listener) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	x := acquireExchange(req.Context(), l)
	x.proto = req.Proto
	if req.TLS != nil {
		x.tls = true
		x.peerID = l.peerID(*req.TLS)
	}
	x.remote = parseAddrPort(req.RemoteAddr)
	x.method = req.Method
	x.host = req.Host
	// The raw :path, as for HTTP/1.1: Serve normalises it (pathnorm.go).
	// req.URL is net/url's reading of it, which decodes escapes and is not
	// what kvgate matches or forwards.
	target := req.RequestURI
	if target == "" { // a request not read from the wire (tests)
		target = req.URL.RequestURI()
	}
	x.path, x.query = cut(target, '?')
	x.hdr = h2Headers(req.Header)
	if req.Body != nil && req.Body != http.NoBody && req.ContentLength != 0 {
		x.body = req.Body
		x.bodyLen = req.ContentLength
	}
	r := l.proxy.Serve(x)
	n, err := writeH2(w, r)
	// The reply is written: nothing needs the request body any more, and an
	// upstream transport still reading it must stop before finish (h2Body).
	if req.Body != nil {
		_ = req.Body.Close()
	}
	r.Finish(err, n)
	if err != nil && err != errClientGone {
		// The body broke on the upstream side (cut, idle, reset): reset the
		// stream, or the client would take a truncated body for a whole one.
		// Both net/http's HTTP/2 and quic-go's HTTP/3 server do so, quietly,
		// for this panic; the HTTP/1.1 engine closes the connection instead.
		panic(http.ErrAbortHandler)
	}
}

func writeH2(w http.ResponseWriter, r *Reply) (int64, error) {
	h := w.Header()
	for _, f := range r.Header {
		addOwned(h, f)
	}
	if len(r.TrailerNames) > 0 {
		h["Trailer"] = []string{strings.Join(r.TrailerNames, ", ")}
	}
	if r.Length >= 0 && r.Body != nil {
		h["Content-Length"] = []string{itoa(r.Length)}
	}
	w.WriteHeader(r.Status)
	if r.Body == nil {
		return 0, nil
	}
	c := h2Copies.Get().(*h2Copy)
	c.w, c.rc, c.flush = w, *http.NewResponseController(w), r.Length < 0
	n, err := copyWaiting(c, r.Body, c.wait[:])
	c.w, c.rc = nil, http.ResponseController{}
	h2Copies.Put(c)
	if err != nil {
		return n, err
	}
	if r.Trailers != nil {
		for _, f := range r.Trailers() {
			addOwned(h, f)
		}
	}
	return n, nil
}

// addOwned copies a field into a net/http header map. Reply fields may alias
// buffers that are reused once the Reply is finished, while net/http may
// encode headers only after the handler returns (HTTP/2 does for empty
// bodies), so the map must own its strings. The key is copied only when
// it is new to the map and CanonicalHeaderKey returned f.Name itself (a
// name that was not canonical already comes back as a fresh string).
func addOwned(h http.Header, f Field) {
	k := http.CanonicalHeaderKey(f.Name)
	vs, ok := h[k]
	if !ok && unsafe.StringData(k) == unsafe.StringData(f.Name) {
		k = strings.Clone(k)
	}
	h[k] = append(vs, strings.Clone(f.Value))
}

func (l *Listener) peerID(cs tls.ConnectionState) string {
	if l.peer == nil {
		return ""
	}
	return l.peer(&cs)
}

func parseAddrPort(s string) netip.AddrPort {
	ap, _ := netip.ParseAddrPort(s)
	return ap
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
