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

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/mtls"
)

// upstreamResponse is what a roundTripper returns: the status, the header
// fields minus hop-by-hop ones, a body to stream, and the transport's hold on
// the exchange (stream). done must be called exactly once when the body is
// done with; a non-nil error discards the connection.
type upstreamResponse struct {
	status       int
	header       []Field
	body         io.Reader
	length       int64
	trailerNames []string
	trailers     func() []Field
	stream       upstreamStream // nil once done, or when the transport holds nothing
}

// upstreamStream is a transport's hold on one response while its body
// streams: the HTTP/1.1 connection, the HTTP/2 stream. Each transport
// implements it in its own file; the core knows only this.
type upstreamStream interface {
	// abort cuts the stream from another goroutine, so that a read blocked
	// on the body returns an error. It must not run concurrently with
	// release or after it (idleWatch.stop orders them).
	abort()
	// release gives the exchange back exactly once: the connection returns
	// to its pool, or is discarded when err is not nil.
	release(err error)
}

// abort cuts the response stream from another goroutine (see upstreamStream).
func (u *upstreamResponse) abort() {
	if u.stream != nil {
		u.stream.abort()
	}
}

// done releases the upstream response exactly once; a non-nil err discards
// the connection instead of returning it to the pool.
func (u *upstreamResponse) done(err error) {
	if s := u.stream; s != nil {
		u.stream = nil
		s.release(err)
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

func newTransportFactory(pc config.Pool, lim config.Limits, ids mtls.IdentitySource, live *connSet) (transportFactory, error) {
	tlsConf, err := upstreamTLS(pc, ids)
	if err != nil {
		return nil, err
	}
	d := &dialer{timeout: pc.DialTimeout.D(), idle: lim.StreamIdleTimeout.D(), live: live}
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
	live    *connSet // every connection the proxy has open upstream
}

// errUpstreamsCut refuses new upstream connections once a drain has cut them.
var errUpstreamsCut = errors.New("kvgate is shutting down: drainTimeout has passed")

func (d *dialer) dial(addr string) (net.Conn, error) {
	c, err := dialAside(addr, d.timeout)
	if err != nil {
		return nil, &dialError{err}
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	ic := &idleConn{Conn: c, idle: d.idle, live: d.live}
	ic.laddr = &connAddr{Addr: c.LocalAddr(), c: ic}
	if !d.live.add(ic) {
		_ = c.Close()
		return nil, &dialError{errUpstreamsCut}
	}
	return ic, nil
}

// dialTCP is net.DialTimeout; a test replaces it to see which goroutine dials.
var dialTCP = net.DialTimeout

// dialAside connects on a goroutine of its own. net's dial path is deep
// (resolver, dialParallel, socket setup: several KiB of stack), and the
// request goroutine that dials is the one that then waits on the response:
// dialling there grew its stack to 16 KiB, kept for the whole life of a
// stream, where 8 KiB is enough for everything else the request does. The
// hand-off costs one goroutine per new connection, next to a TCP connect.
func dialAside(addr string, timeout time.Duration) (net.Conn, error) {
	type dialed struct {
		c   net.Conn
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		c, err := dialTCP("tcp", addr, timeout)
		ch <- dialed{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// connSet is every upstream connection of one Proxy, across pools and
// reloads, so that the end of a drain can cut them all at once.
type connSet struct {
	mu    sync.Mutex
	conns map[*idleConn]struct{}
	cut   bool // cutAll ran: no new connections
}

func (s *connSet) add(c *idleConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cut {
		return false
	}
	if s.conns == nil {
		s.conns = map[*idleConn]struct{}{}
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *connSet) remove(c *idleConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// cutAll closes every open upstream connection, unblocking whatever waits
// on one, and refuses new ones from then on. Their owners see read or write
// errors and discard them; none goes back to a pool in a usable state.
func (s *connSet) cutAll() {
	s.mu.Lock()
	s.cut = true
	open := make([]*idleConn, 0, len(s.conns))
	for c := range s.conns {
		open = append(open, c)
	}
	s.mu.Unlock()
	for _, c := range open {
		c.abort()
	}
}

// connAddr is the local address of an upstream connection. It names the
// connection itself, so that fasthttp.Response.LocalAddr leads back to it
// (two connections to different endpoints may share a local port).
type connAddr struct {
	net.Addr
	c *idleConn
}

// connOf returns the connection whose local address a is; nil if a names none.
func connOf(a net.Addr) *idleConn {
	if ca, ok := a.(*connAddr); ok {
		return ca.c
	}
	return nil
}

// idleConn pushes its deadline forward on every read and write (when idle
// is above 0). To avoid resetting the runtime timer on each call it only
// moves the deadline when more than an eighth of the idle window has passed.
//
// Deadlines a client library sets (fasthttp's DoDeadline, used for
// timeouts.backendRequest) bound the connection only until the first
// response byte arrives: the response is then a stream, bounded by idle
// alone. Clearing them (fasthttp does before an untimed request) restores
// the idle bound.
type idleConn struct {
	net.Conn
	live  *connSet
	laddr net.Addr // *connAddr
	idle  time.Duration
	mu    sync.Mutex
	set   time.Time
	ext   time.Time // try deadline until the response starts; zero: none
	armed bool      // the socket deadline came from ext

	waiter  *h1Cancel // the request awaiting its first response byte here; nil: none
	aborted bool      // closed by abort: every later read fails
}

func (c *idleConn) touch() {
	now := time.Now()
	c.mu.Lock()
	switch {
	case !c.ext.IsZero():
		d := c.ext
		if c.idle > 0 && now.Add(c.idle).Before(d) {
			d = now.Add(c.idle)
		}
		c.set, c.armed = time.Time{}, true
		_ = c.Conn.SetDeadline(d)
	case c.idle > 0 && (c.armed || now.Sub(c.set) > c.idle/8):
		c.set, c.armed = now, false
		_ = c.Conn.SetDeadline(now.Add(c.idle))
	case c.armed:
		c.armed = false
		_ = c.Conn.SetDeadline(time.Time{})
	}
	c.mu.Unlock()
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.touch()
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.ext = time.Time{} // the response has started
		c.waiter = nil
		aborted := c.aborted
		c.mu.Unlock()
		if aborted {
			// Bytes that arrived as abort closed the socket: dropping them
			// makes the owner fail and discard the connection, rather than
			// finish the response and pool a closed connection.
			return 0, net.ErrClosed
		}
	}
	return n, err
}

// setWaiter records the request now awaiting its response on c.
func (c *idleConn) setWaiter(h *h1Cancel) {
	c.mu.Lock()
	c.waiter = h
	c.mu.Unlock()
}

func (c *idleConn) clearWaiter(h *h1Cancel) {
	c.mu.Lock()
	if c.waiter == h {
		c.waiter = nil
	}
	c.mu.Unlock()
}

// abortWaiter closes c if h still awaits its first response byte on it,
// and reports whether it did.
func (c *idleConn) abortWaiter(h *h1Cancel) bool {
	c.mu.Lock()
	ok := c.waiter == h
	if ok {
		c.waiter, c.aborted = nil, true
	}
	c.mu.Unlock()
	if ok {
		_ = c.Conn.Close()
	}
	return ok
}

func (c *idleConn) setExt(t time.Time) error {
	c.mu.Lock()
	c.ext = t
	c.mu.Unlock()
	return nil
}

// Deadlines set by client libraries become the try deadline (see above);
// the idle bound stays owned by idleConn.
func (c *idleConn) SetDeadline(t time.Time) error      { return c.setExt(t) }
func (c *idleConn) SetReadDeadline(t time.Time) error  { return c.setExt(t) }
func (c *idleConn) SetWriteDeadline(t time.Time) error { return c.setExt(t) }
func (c *idleConn) Write(p []byte) (int, error)        { c.touch(); return c.Conn.Write(p) }

// LocalAddr is a *connAddr naming this connection.
func (c *idleConn) LocalAddr() net.Addr { return c.laddr }

// Close closes the connection and forgets it in its set.
func (c *idleConn) Close() error {
	c.live.remove(c)
	return c.Conn.Close()
}

// abort closes the socket from another goroutine so that a read or write
// blocked on it returns; the owner then discards the connection (Close).
func (c *idleConn) abort() {
	c.mu.Lock()
	c.aborted = true
	c.mu.Unlock()
	_ = c.Conn.Close()
}

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

// limitReader fails once more than max bytes have been read.
type limitReader struct {
	r    io.Reader
	max  int64 // the limit, for messages
	read int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.read += int64(n)
	if l.read > l.max {
		return n, errBodyTooLarge
	}
	return n, err
}

// bytesBody wraps a fully read body.
func bytesBody(b []byte) io.Reader { return bytes.NewReader(b) }
