package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// The HTTP/3 engine: quic-go's http3.Server on a UDP socket bound to the same
// port as the listener's TCP socket, serving through Listener.ServeHTTP like
// the HTTP/2 engine, so both share the one core. The TLS config is the
// listener's own (same certificate source, same client verification) with
// ALPN h3. HTTP/1.1 and HTTP/2 responses of such a listener advertise it in
// Alt-Svc.

// altSvcMaxAge is how long clients may remember the HTTP/3 endpoint (1 day).
const altSvcMaxAge = 86400

// udpBufferWant is the socket buffer size quic-go asks for (about 7 MB); the
// kernel caps it at net.core.rmem_max / wmem_max.
const udpBufferWant = 7500000

type http3Engine struct {
	srv    *http3.Server
	conn   net.PacketConn
	ln     *quic.EarlyListener
	altSvc string // Alt-Svc value for HTTP/1.1 and HTTP/2 responses
	done   chan struct{}
}

// startHTTP3 opens the UDP socket on tcpAddr's port and serves HTTP/3 there
// when the listener speaks http3. A no-op otherwise.
func (l *Listener) startHTTP3(tcpAddr net.Addr) error {
	if !l.speaks("http3") || l.tlsConf == nil {
		return nil
	}
	ta, ok := tcpAddr.(*net.TCPAddr)
	if !ok {
		return fmt.Errorf("proxy: http3 needs a TCP/IP listener address, got %s", tcpAddr)
	}
	warnUDPBuffers(l.proxy.log, os.ReadFile)
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: ta.IP, Port: ta.Port, Zone: ta.Zone})
	if err != nil {
		return fmt.Errorf("proxy: http3 on udp port %d: %w (is another process using the UDP port?)", ta.Port, err)
	}
	lim := l.proxy.limits()
	tc := l.tlsConf.Clone()
	tc.NextProtos = []string{http3.NextProtoH3}
	qc := &quic.Config{
		Allow0RTT:          l.cfg.TLS.EnableEarlyData,
		MaxIncomingStreams: int64(lim.MaxConcurrentStreams),
		MaxIdleTimeout:     lim.IdleTimeout.D(),
	}
	ln, err := quic.ListenEarly(uc, http3.ConfigureTLSConfig(tc), qc)
	if err != nil {
		_ = uc.Close()
		return fmt.Errorf("proxy: http3 on udp port %d: %w", ta.Port, err)
	}
	e := &http3Engine{
		ln: ln,
		srv: &http3.Server{
			TLSConfig:      tc,
			QUICConfig:     qc,
			Handler:        l,
			MaxHeaderBytes: lim.MaxHeaderBytes,
			IdleTimeout:    lim.IdleTimeout.D(),
			Logger:         l.proxy.log.With("listener", l.name, "engine", "http3"),
		},
		conn:   uc,
		altSvc: `h3=":` + strconv.Itoa(ta.Port) + `"; ma=` + strconv.Itoa(altSvcMaxAge),
		done:   make(chan struct{}),
	}
	l.h3 = e
	go func() {
		defer close(e.done)
		_ = e.srv.ServeListener(&quicCap{EarlyListener: ln, l: l})
	}()
	l.proxy.log.Info("http3 listening", "listener", l.name, "address", uc.LocalAddr().String(), "earlyData", qc.Allow0RTT)
	return nil
}

// shutdownHTTP3 sends GOAWAY, lets running requests finish until ctx ends,
// then closes every QUIC connection and the socket.
func (l *Listener) shutdownHTTP3(ctx context.Context) {
	e := l.h3
	if e == nil {
		return
	}
	_ = e.srv.Shutdown(ctx)
	l.closeHTTP3()
}

// closeHTTP3 closes the HTTP/3 engine at once and waits for its serve loop.
func (l *Listener) closeHTTP3() {
	e := l.h3
	if e == nil {
		return
	}
	_ = e.srv.Close()
	_ = e.ln.Close()
	_ = e.conn.Close()
	<-e.done
}

// quicCap holds QUIC connections to the proxy's connection cap
// (limits.maxConnections, shared with TCP). Like the TCP accept loop, a
// connection accepted over the cap waits, unserved, for a slot; meanwhile
// quic-go's bounded accept queue refuses further handshakes.
type quicCap struct {
	*quic.EarlyListener
	l *Listener
}

// Accept returns the next connection once it holds a slot of the cap. The
// slot is given back when the connection ends.
func (q *quicCap) Accept(ctx context.Context) (*quic.Conn, error) {
	c, err := q.EarlyListener.Accept(ctx)
	if err != nil {
		return nil, err
	}
	select {
	case q.l.proxy.connSem <- struct{}{}:
	case <-ctx.Done():
		_ = c.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeExcessiveLoad), "server shutting down")
		return nil, ctx.Err()
	}
	context.AfterFunc(c.Context(), func() { <-q.l.proxy.connSem })
	return c, nil
}

// addAltSvc advertises HTTP/3 on HTTP/1.1 and HTTP/2 responses of a listener
// that serves it.
func addAltSvc(x *Exchange, r *Reply) {
	if e := x.listener.h3; e != nil && x.proto != "HTTP/3.0" {
		r.Header = append(r.Header, Field{"Alt-Svc", e.altSvc})
	}
}

// warnUDPBuffers logs the sysctl to run when the kernel caps UDP socket
// buffers below what QUIC wants; without it throughput suffers under load.
func warnUDPBuffers(log *slog.Logger, read func(string) ([]byte, error)) {
	for _, a := range udpBufferAdvice(read) {
		log.Warn("UDP socket buffers are small for HTTP/3; raise the kernel limit", "run", a)
	}
}

// udpBufferAdvice returns one sysctl command per limit below udpBufferWant.
// Files that cannot be read (not Linux, no /proc) give no advice.
func udpBufferAdvice(read func(string) ([]byte, error)) []string {
	var out []string
	for _, key := range []string{"net.core.rmem_max", "net.core.wmem_max"} {
		b, err := read("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
		if err != nil {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || n >= udpBufferWant {
			continue
		}
		out = append(out, "sysctl -w "+key+"="+strconv.Itoa(udpBufferWant))
	}
	return out
}
