package proxy

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/kvgate/kvgate/openai"
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
	Each(v FieldVisitor)
}

// FieldVisitor receives the fields of a HeaderReader. Passing a pointer as a
// visitor does not allocate, where a method value would.
type FieldVisitor interface {
	Field(name, value string)
}

// VisitFunc adapts a function to FieldVisitor.
type VisitFunc func(name, value string)

// Field calls f.
func (f VisitFunc) Field(name, value string) { f(name, value) }

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
	host     string // Host or :authority as sent (an absolute-form target's host, pathnorm.go), port included
	path     string // the engine's raw path, no query; normalised by Serve (pathnorm.go)
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
	// modelLabel is the model's metric label value (metrics_genai.go),
	// owned by the metrics; set where the model is known, "" when none.
	modelLabel string

	// Per-request state owned by the core (handler.go); kept here so one
	// pooled object carries a whole request without further allocations.
	proxy   *Proxy
	reply   Reply
	limit   limitReader
	route   string
	pool    string
	ep      *endpoint // the try's endpoint, counted in flight by its pick until release (retry.go)
	up      *upstreamResponse
	upBody  *h2Body          // the request body as net/http reads it (transport_h2.go); nil when none
	upBuf   upstreamResponse // h1 responses live here: no allocation per request
	scratch []byte           // forwarding header values; strings into it live until release
	hcopy   headerCopy       // copyRequestHeaders\' visitor, here so that passing it allocates nothing
	pathBuf []byte           // the normalised path when it differs from the raw one; lives until release
	status  int
	errKind errorCode
	rt      routeState // routing.go
	inf     inferState // inference picking (picker.go)
	peek    bodyPeek   // body bytes read ahead of forwarding (body.go)
	idle    *idleWatch // the route's timeouts.idle on the response stream (idle.go); nil when unset

	usage     *usageReader // reads the reply's usage (usage.go); nil when not watched
	tokens    openai.Usage // what the usage object said, set in finish
	hasTokens bool
	ttft      time.Duration // start to the first upstream body byte of a watched reply (usage.go); 0 none
	span      spanState     // the request's server span (tracing.go); zero when tracing is off
}

var _ router.Request = (*Exchange)(nil)

var exchangePool = sync.Pool{New: func() any { return new(Exchange) }}

// maxPooledPathBuf is the largest pathBuf a released Exchange keeps.
const maxPooledPathBuf = 4 << 10

func acquireExchange(ctx context.Context, l *Listener) *Exchange {
	x := exchangePool.Get().(*Exchange)
	x.ctx = ctx
	x.listener = l
	x.start = time.Now()
	x.bodyLen = -1
	return x
}

// poisonReleased, set by the package's tests, overwrites a released
// Exchange's own buffers, so that a string that still aliases them after its
// request (the bug class behind the HTTP/2 header leak) reads as '#'s at once
// instead of as some later request's bytes.
var poisonReleased bool

func releaseExchange(x *Exchange) {
	if poisonReleased {
		poison(x.idBuf[:])
		poison(x.scratch[:cap(x.scratch)])
		poison(x.pathBuf[:cap(x.pathBuf)])
	}
	hdr, upHdr, scratch, pathBuf := x.reply.Header[:0], x.upBuf.header[:0], x.scratch[:0], x.pathBuf[:0]
	if cap(pathBuf) > maxPooledPathBuf {
		pathBuf = nil // one huge path must not pin its buffer in the pool
	}
	*x = Exchange{}
	x.reply.Header, x.upBuf.header, x.scratch, x.pathBuf = hdr, upHdr, scratch, pathBuf
	exchangePool.Put(x)
}

func poison(b []byte) {
	for i := range b {
		b[i] = '#'
	}
}

// Context is cancelled when the client goes away, where the engine can tell.
func (x *Exchange) Context() context.Context { return x.ctx }

// Host is the request host without its port (router.Request).
func (x *Exchange) Host() string { return stripPort(x.host) }

// Method is the request method (router.Request).
func (x *Exchange) Method() string { return x.method }

// Path is the request path without the query (router.Request): normalised
// (pathnorm.go) once Serve has started.
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
