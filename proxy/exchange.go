package proxy

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/kvgate/kvgate/cache"
	"github.com/kvgate/kvgate/router"
)

// Field is one header field. Names keep the case the engine produced.
type Field struct{ Name, Value string }

// HeaderReader reads request headers. Implementations wrap an engine's own
// header storage; calls must not allocate and are made from one goroutine.
type HeaderReader interface {
	// Get returns the first value of a header by case-insensitive name, "" if absent.
	Get(name string) string
	// Len is the number of header fields.
	Len() int
	// Each visits every field in order.
	Each(fn func(name, value string))
}

// Exchange is the engine-neutral view of one request. An engine fills it,
// calls Proxy.Serve, and writes the Reply. Strings may alias the engine's
// buffers: they are valid until the Reply's body has been written.
type Exchange struct {
	ctx      context.Context
	listener *Listener
	proto    string // HTTP/1.1, HTTP/2.0 or HTTP/3.0
	tls      bool
	peerID   string // verified SPIFFE ID of the client, "" when none
	remote   netip.AddrPort
	method   string
	host     string // Host or :authority as sent, port included
	path     string // raw path, no query
	query    string // raw query, no '?'
	hdr      HeaderReader
	body     io.Reader // nil when the request has no body
	bodyLen  int64     // -1 when unknown (chunked / streamed)
	start    time.Time
	conn     net.Conn // the client connection, when the engine exposes it

	requestID string
	idBuf     [32]byte
	model     string
	modelRead bool

	// Per-request state owned by the core (handler.go); kept here so one
	// pooled object carries a whole request without further allocations.
	proxy   *Proxy
	reply   Reply
	limit   limitReader
	out     bodyOut
	route   string
	pool    string
	ep      *endpoint
	up      *upstreamResponse
	upBody  *h2Body          // the request body as net/http reads it (transport_h2.go); nil when none
	upBuf   upstreamResponse // h1 responses live here: no allocation per request
	scratch []byte           // forwarding header values; strings into it live until release
	status  int
	errKind string
	rt      routeState // routing.go
	inf     inferState // inference picking (picker.go)
	peek    bodyPeek   // body bytes read ahead of forwarding (body.go)
	idle    *idleWatch // the route's timeouts.idle on the response stream (idle.go); nil when unset

	usage     *usageReader // reads the reply's usage (usage.go); nil when not watched
	tokens    cache.Usage  // what the usage object said, set in finish
	hasTokens bool
	span      spanState // the request's server span (tracing.go); zero when tracing is off
}

var _ router.Request = (*Exchange)(nil)

var exchangePool = sync.Pool{New: func() any { return new(Exchange) }}

func acquireExchange(ctx context.Context, l *Listener) *Exchange {
	x := exchangePool.Get().(*Exchange)
	x.ctx = ctx
	x.listener = l
	x.start = time.Now()
	x.bodyLen = -1
	return x
}

func releaseExchange(x *Exchange) {
	hdr, upHdr, scratch := x.reply.Header[:0], x.upBuf.header[:0], x.scratch[:0]
	*x = Exchange{}
	x.reply.Header, x.upBuf.header, x.scratch = hdr, upHdr, scratch
	exchangePool.Put(x)
}

// Context is cancelled when the client goes away, where the engine can tell.
func (x *Exchange) Context() context.Context { return x.ctx }

// Host is the request host without its port (router.Request).
func (x *Exchange) Host() string { return stripPort(x.host) }

// Method is the request method (router.Request).
func (x *Exchange) Method() string { return x.method }

// Path is the raw request path without the query (router.Request).
func (x *Exchange) Path() string { return x.path }

// Header returns the first value of a request header (router.Request).
func (x *Exchange) Header(name string) string { return x.hdr.Get(name) }

// Query returns the first value of a query parameter (router.Request).
func (x *Exchange) Query(name string) (string, bool) { return queryValue(x.query, name) }

// Model is the body's `model` field (router.Request), read lazily from a
// bounded prefix of a JSON POST body (model.go).
func (x *Exchange) Model() string {
	if !x.modelRead {
		x.modelRead = true
		x.readModel()
	}
	return x.model
}

// queryValue scans a raw query for name without allocating. Values are
// returned raw (not unescaped), which is what exact matching compares.
func queryValue(q, name string) (string, bool) {
	for len(q) > 0 {
		var part string
		part, q = cut(q, '&')
		k, v := cut(part, '=')
		if k == name {
			return v, true
		}
	}
	return "", false
}

func cut(s string, sep byte) (string, string) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

func stripPort(h string) string {
	if len(h) > 0 && h[0] == '[' {
		for i := 1; i < len(h); i++ {
			if h[i] == ']' {
				return h[1:i]
			}
		}
		return h
	}
	for i := len(h) - 1; i >= 0; i-- {
		if h[i] == ':' {
			return h[:i]
		}
		if h[i] < '0' || h[i] > '9' {
			break
		}
	}
	return h
}
