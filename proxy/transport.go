package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/mtls"
)

// upstreamResponse is what a roundTripper returns: the status, the header
// fields minus hop-by-hop ones, and a body to stream. release must be called
// exactly once when the body is done with; a non-nil error discards the connection.
type upstreamResponse struct {
	status       int
	header       []Field
	body         io.Reader
	length       int64
	trailerNames []string
	trailers     func() []Field
	release      func(err error) // set by transports that need a closure (h2)
	h1           *fasthttp.Response
}

// done releases the upstream response exactly once; a non-nil err discards
// the connection instead of returning it to the pool.
func (u *upstreamResponse) done(err error) {
	if u.h1 != nil {
		releaseH1(u.h1, err)
		u.h1 = nil
		return
	}
	if u.release != nil {
		u.release(err)
	}
}

// roundTripper sends one request to one endpoint. Safe for concurrent use.
type roundTripper interface {
	roundTrip(x *Exchange) (*upstreamResponse, error)
	// close releases idle connections; requests in flight finish.
	close()
}

// transportFactory makes the per-endpoint round trippers of one pool.
type transportFactory interface {
	forEndpoint(addr string) roundTripper
}

func newTransportFactory(pc config.Pool, lim config.Limits, ids mtls.IdentitySource) (transportFactory, error) {
	tlsConf, err := upstreamTLS(pc, ids)
	if err != nil {
		return nil, err
	}
	d := &dialer{timeout: pc.DialTimeout.D(), idle: lim.StreamIdleTimeout.D()}
	switch pc.Protocol {
	case "h2c", "h2":
		return newH2Factory(pc, tlsConf, d), nil
	default:
		return &h1Factory{pc: pc, lim: lim, tls: tlsConf, dial: d}, nil
	}
}

// dialError marks a failure to connect, as opposed to a failure after connecting.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connect: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// dialer connects to upstreams and wraps each connection so that every read
// and write must make progress within the stream idle timeout.
type dialer struct {
	timeout time.Duration
	idle    time.Duration
}

func (d *dialer) dial(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, d.timeout)
	if err != nil {
		return nil, &dialError{err}
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if d.idle <= 0 {
		return c, nil
	}
	return &idleConn{Conn: c, idle: d.idle}, nil
}

// idleConn pushes its deadline forward on every read and write. To avoid
// resetting the runtime timer on each call it only moves the deadline when
// more than an eighth of the idle window has passed.
type idleConn struct {
	net.Conn
	idle time.Duration
	mu   sync.Mutex
	set  time.Time
}

func (c *idleConn) touch() {
	now := time.Now()
	c.mu.Lock()
	if now.Sub(c.set) > c.idle/8 {
		c.set = now
		_ = c.Conn.SetDeadline(now.Add(c.idle))
	}
	c.mu.Unlock()
}

func (c *idleConn) Read(p []byte) (int, error) { c.touch(); return c.Conn.Read(p) }

// Deadlines belong to idleConn alone: client libraries that clear them
// (fasthttp does when no timeout is set) would otherwise disable the idle bound.
func (c *idleConn) SetDeadline(time.Time) error      { return nil }
func (c *idleConn) SetReadDeadline(time.Time) error  { return nil }
func (c *idleConn) SetWriteDeadline(time.Time) error { return nil }
func (c *idleConn) Write(p []byte) (int, error)      { c.touch(); return c.Conn.Write(p) }

// b2s views bytes as a string without copying. The bytes must stay unchanged
// for as long as the string is used.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// splitList splits a comma-separated header value into trimmed names.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// errBodyTooLarge is returned by limitReader past the body limit.
var errBodyTooLarge = errors.New("proxy: request body exceeds limits.maxBodyBytes")

// limitReader fails once more than n bytes have been read.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return n, errBodyTooLarge
	}
	return n, err
}

// bytesBody wraps a fully read body.
func bytesBody(b []byte) io.Reader { return bytes.NewReader(b) }
