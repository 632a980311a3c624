package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/mtls"
)

var timeZero time.Time

// Listener is one client-facing socket and its engines. Accepted connections
// are dispatched by protocol: TLS by ALPN, plaintext by the HTTP/2 preface.
type Listener struct {
	name    string
	cfg     config.Listener
	proxy   *Proxy
	trusted []netip.Prefix
	tlsConf *tls.Config
	peer    func(*tls.ConnectionState) string // SPIFFE ID of a verified peer; nil: none

	certFiles *mtls.CertFiles // listener certificate files; nil with tls.spiffe or no TLS
	h3        *http3Engine    // nil unless protocols has http3

	ln   net.Listener
	h1   *fasthttp.Server
	h1ln *chanListener
	h2   *http2.Server
	hs   *http.Server // base config of the HTTP/2 engine; its Shutdown sends GOAWAY

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Name is the listener's configured name.
func (l *Listener) Name() string { return l.name }

// Addr is the bound address (useful with port 0).
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

func (l *Listener) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range l.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (l *Listener) speaks(proto string) bool { return slices.Contains(l.cfg.Protocols, proto) }

func newListener(p *Proxy, lc config.Listener) (*Listener, error) {
	trusted, err := parsePrefixes(lc.TrustedProxies)
	if err != nil {
		return nil, err
	}
	l := &Listener{name: lc.Name, cfg: lc, proxy: p, trusted: trusted, conns: map[net.Conn]struct{}{}}
	if lc.TLS != nil {
		if err := p.listenerTLS(l); err != nil {
			return nil, err
		}
	}
	lim := p.limits()
	l.h1 = l.newH1Server()
	l.h2 = &http2.Server{
		MaxConcurrentStreams: uint32(lim.MaxConcurrentStreams),
		IdleTimeout:          lim.IdleTimeout.D(),
	}
	l.hs = &http.Server{Handler: l, MaxHeaderBytes: lim.MaxHeaderBytes, IdleTimeout: lim.IdleTimeout.D(),
		ReadHeaderTimeout: lim.ReadHeaderTimeout.D(), ErrorLog: discardLog}
	if err := http2.ConfigureServer(l.hs, l.h2); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Listener) start() error {
	ln, err := net.Listen("tcp", l.cfg.Address)
	if err != nil {
		return err
	}
	// Set before HTTP/3 starts: its requests read l.ln (the listener's port).
	l.ln = ln
	l.h1ln = newChanListener(ln.Addr())
	if err := l.startHTTP3(ln.Addr()); err != nil {
		_ = ln.Close()
		l.ln, l.h1ln = nil, nil
		return err
	}
	go func() { _ = l.h1.Serve(l.h1ln) }()
	go l.acceptLoop()
	return nil
}

func (l *Listener) acceptLoop() {
	sem := l.proxy.connSem
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(5 * time.Millisecond)
			continue
		}
		// Over the cap the accepted connection waits, unserved, for a slot;
		// the slot is taken after Accept so that listeners never hold slots
		// they have no connection for.
		sem <- struct{}{}
		if l.proxy.draining.Load() {
			// Waited for a slot until the drain began: closeConns may
			// already have run, so it is not served.
			_ = c.Close()
			<-sem
			continue
		}
		tc := &trackedConn{Conn: c, l: l}
		l.track(tc, true)
		l.wg.Add(1)
		go l.dispatch(tc)
	}
}

func (l *Listener) track(c net.Conn, add bool) {
	l.mu.Lock()
	if add {
		l.conns[c] = struct{}{}
	} else {
		delete(l.conns, c)
	}
	l.mu.Unlock()
}

// dispatch finds the protocol of a new connection and hands it to an engine.
func (l *Listener) dispatch(c net.Conn) {
	defer l.wg.Done()
	deadline := time.Now().Add(l.proxy.limits().ReadHeaderTimeout.D())
	if l.tlsConf != nil {
		tc := tls.Server(c, l.tlsConf)
		_ = tc.SetDeadline(deadline)
		if err := tc.Handshake(); err != nil {
			l.proxy.metrics.tlsErrors.Add(1)
			l.proxy.log.Debug("tls handshake failed", "listener", l.name, "remote", c.RemoteAddr().String(), "err", err)
			_ = tc.Close()
			return
		}
		_ = tc.SetDeadline(timeZero)
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			l.serveH2(tc)
			return
		}
		l.pushH1(tc, deadline)
		return
	}
	if !l.speaks("http2") {
		l.pushH1(c, deadline)
		return
	}
	isH2, pc, err := sniffPreface(c, deadline)
	if err != nil {
		_ = c.Close()
		return
	}
	if isH2 {
		l.serveH2(pc)
		return
	}
	if !l.speaks("http1") {
		_ = c.Close()
		return
	}
	l.h1ln.push(pc)
}

// pushH1 hands a connection to fasthttp once its first request byte has
// arrived. A connection that sends nothing before the header deadline is
// closed silently: fasthttp would write an unsolicited error response on it,
// which clients that opened a spare connection report as a protocol error.
func (l *Listener) pushH1(c net.Conn, deadline time.Time) {
	var b [1]byte
	_ = c.SetReadDeadline(deadline)
	n, _ := c.Read(b[:])
	_ = c.SetReadDeadline(timeZero)
	if n == 0 {
		_ = c.Close()
		return
	}
	pre := []byte{b[0]}
	if tc, ok := c.(*tls.Conn); ok {
		l.h1ln.push(&tlsPrefixConn{Conn: tc, pre: pre})
		return
	}
	l.h1ln.push(&prefixConn{Conn: c, pre: pre})
}

// tlsPrefixConn is a prefixConn that still looks like a TLS connection to
// fasthttp and to the engine (Handshake, ConnectionState).
type tlsPrefixConn struct {
	*tls.Conn
	pre []byte
}

func (c *tlsPrefixConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (l *Listener) serveH2(c net.Conn) {
	l.h2.ServeConn(guardH2(c), &http2.ServeConnOpts{BaseConfig: l.hs, Handler: l})
	_ = c.Close()
}

var h2Preface = []byte(http2.ClientPreface)

// sniffPreface reads just enough bytes to tell an HTTP/2 prior-knowledge
// preface from an HTTP/1 request line, and returns a conn that replays them.
func sniffPreface(c net.Conn, deadline time.Time) (bool, net.Conn, error) {
	var buf [24]byte
	_ = c.SetReadDeadline(deadline)
	defer c.SetReadDeadline(timeZero)
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if !bytes.HasPrefix(h2Preface, buf[:n]) {
			return false, &prefixConn{Conn: c, pre: append([]byte(nil), buf[:n]...)}, nil
		}
		if err != nil {
			return false, nil, err
		}
	}
	return true, &prefixConn{Conn: c, pre: append([]byte(nil), buf[:n]...)}, nil
}

// prefixConn replays bytes already read before reading from the connection.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// trackedConn returns its slot in the connection cap and leaves the
// listener's set exactly once, on the first Close.
type trackedConn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.track(c, false)
		<-c.l.proxy.connSem
	})
	return err
}

// shutdown stops accepting, lets in-flight requests finish until ctx ends,
// then closes the client connections still open. It returns when every
// engine has stopped; requests cut at the deadline may still be returning
// (Proxy.Shutdown waits for them, bounded).
func (l *Listener) shutdown(ctx context.Context) {
	_ = l.ln.Close()
	// fasthttp closes the listeners its Serve has registered; if Serve had
	// not started yet it would later block in Accept for good.
	_ = l.h1ln.Close()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); l.shutdownHTTP3(ctx) }()
	go func() { defer wg.Done(); _ = l.h1.ShutdownWithContext(ctx) }()
	go func() { defer wg.Done(); _ = l.hs.Shutdown(ctx); l.waitConns(ctx) }()
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-ctx.Done():
	}
	l.closeConns()
	<-drained
}

// closeConns closes every client connection still open. The set is copied
// first: trackedConn.Close leaves it, under the same lock.
func (l *Listener) closeConns() {
	l.mu.Lock()
	open := make([]net.Conn, 0, len(l.conns))
	for c := range l.conns {
		open = append(open, c)
	}
	l.mu.Unlock()
	for _, c := range open {
		_ = c.Close()
	}
}

// waitConns waits until every dispatched connection has ended or ctx is done.
func (l *Listener) waitConns(ctx context.Context) {
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// chanListener feeds connections the dispatcher classified as HTTP/1 to
// fasthttp's Serve loop, which then owns their lifecycle and shutdown.
type chanListener struct {
	addr   net.Addr
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newChanListener(a net.Addr) *chanListener {
	return &chanListener{addr: a, ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (c *chanListener) push(conn net.Conn) {
	select {
	case c.ch <- conn:
	case <-c.closed:
		_ = conn.Close()
	}
}

func (c *chanListener) Accept() (net.Conn, error) {
	select {
	case conn := <-c.ch:
		return conn, nil
	case <-c.closed:
		return nil, net.ErrClosed
	}
}

func (c *chanListener) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *chanListener) Addr() net.Addr { return c.addr }
