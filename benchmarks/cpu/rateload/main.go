// Command rateload is the load client of benchmarks/cpu. It has three modes:
//
//   - load (the default): open-loop requests at a fixed rate over a fixed set
//     of keep-alive connections, HTTP/1.1 or HTTP/2, plaintext, TLS or mutual
//     TLS. Request i is due at start + i/rate whether or not earlier answers
//     came back; its latency is measured from that due time, so a proxy that
//     stalls shows up in the percentiles instead of slowing the client down.
//     It prints one JSON object with the counts and latency percentiles.
//   - sse-backend: an upstream that answers every request with a
//     text/event-stream response, sends one event and then holds the stream
//     open until the client goes away (the idle-stream test's backend).
//   - sse-hold: opens N such streams through a proxy, waits for the first
//     event on each, writes a JSON line to -ready, holds them all for -hold and
//     closes them. HTTP/1.1 by default, one connection per stream; with -h2,
//     prior-knowledge h2c (or h2 over TLS), -m streams on each connection.
//
// It owns only load generation and counting; it never retries a request and is
// meant for loopback servers under test.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"

	"github.com/kvgate/kvgate/benchmarks/internal/loadstat"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rateload:", err)
		os.Exit(1)
	}
}

type config struct {
	mode     string
	target   *url.URL
	rate     int
	duration time.Duration
	conns    int
	h2       bool
	timeout  time.Duration
	tls      *tls.Config
	// sse-backend / sse-hold
	listen  string
	streams int
	perConn int
	hold    time.Duration
	ready   string
}

func parse(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("rateload", flag.ContinueOnError)
	fs.StringVar(&c.mode, "mode", "load", "`MODE`: load | sse-backend | sse-hold")
	target := fs.String("url", "", "`URL` to GET (http:// or https://)")
	fs.IntVar(&c.rate, "rate", 2000, "requests per second (load)")
	fs.DurationVar(&c.duration, "d", 10*time.Second, "how long to send (load)")
	fs.IntVar(&c.conns, "c", 16, "connections (load)")
	fs.BoolVar(&c.h2, "h2", false, "HTTP/2 (ALPN h2 over TLS, prior-knowledge h2c over plaintext)")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "per-request timeout")
	cert := fs.String("cert", "", "client certificate `FILE` (PEM) for mutual TLS")
	key := fs.String("key", "", "client key `FILE` (PEM) for mutual TLS")
	ca := fs.String("ca", "", "verify the server against this CA `FILE` (PEM); default: no verification")
	fs.StringVar(&c.listen, "listen", "127.0.0.1:0", "`HOST:PORT` (sse-backend)")
	fs.IntVar(&c.streams, "n", 10000, "streams to open (sse-hold)")
	fs.IntVar(&c.perConn, "m", 100, "streams per HTTP/2 connection (sse-hold -h2); 100 fits HAProxy's and nginx's default stream limits")
	fs.DurationVar(&c.hold, "hold", 10*time.Second, "how long to hold the streams open (sse-hold)")
	fs.StringVar(&c.ready, "ready", "", "`FILE` written once every stream is open (sse-hold)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q: every option is a flag (see -h)", fs.Arg(0))
	}
	switch c.mode {
	case "load", "sse-hold":
		u, err := url.Parse(*target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("-url %q: give an absolute http:// or https:// URL", *target)
		}
		c.target = u
	case "sse-backend":
	default:
		return c, fmt.Errorf("-mode %q: use load, sse-backend or sse-hold", c.mode)
	}
	if c.rate < 1 || c.conns < 1 || c.duration <= 0 || c.streams < 1 || c.perConn < 1 {
		return c, errors.New("-rate, -c, -d, -n and -m must be positive")
	}
	if c.target != nil && c.target.Scheme == "https" {
		c.tls = &tls.Config{InsecureSkipVerify: *ca == "", ServerName: c.target.Hostname()}
		if *ca != "" {
			pem, err := os.ReadFile(*ca)
			if err != nil {
				return c, err
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return c, fmt.Errorf("-ca %s: no PEM certificate in it", *ca)
			}
			c.tls.RootCAs = pool
		}
		if *cert != "" || *key != "" {
			kp, err := tls.LoadX509KeyPair(*cert, *key)
			if err != nil {
				return c, fmt.Errorf("-cert/-key: %w", err)
			}
			c.tls.Certificates = []tls.Certificate{kp}
		}
		if c.h2 {
			c.tls.NextProtos = []string{"h2"}
		} else {
			c.tls.NextProtos = []string{"http/1.1"}
		}
	}
	return c, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	switch c.mode {
	case "sse-backend":
		return sseBackend(ctx, c, out)
	case "sse-hold":
		return sseHold(ctx, c, out)
	}
	rep, err := load(ctx, c)
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(rep)
}

// Report is what load prints.
type Report struct {
	Requests    int     `json:"requests"`
	OK          int     `json:"ok"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"firstError,omitempty"`
	Seconds     float64 `json:"seconds"`
	Rate        float64 `json:"rate"`
	P50ms       float64 `json:"p50ms"`
	P90ms       float64 `json:"p90ms"`
	P99ms       float64 `json:"p99ms"`
	MaxMs       float64 `json:"maxMs"`
	ClientCPUms float64 `json:"clientCpuMs"`
}

// doer sends one request and reads the whole answer.
type doer interface {
	do(ctx context.Context) error
	close()
}

func dial(ctx context.Context, c config) (net.Conn, error) {
	host := c.target.Host
	if c.target.Port() == "" {
		host = net.JoinHostPort(c.target.Hostname(), map[string]string{"http": "80", "https": "443"}[c.target.Scheme])
	}
	var d net.Dialer
	d.Timeout = c.timeout
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil || c.tls == nil {
		return nc, err
	}
	tc := tls.Client(nc, c.tls)
	hctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		nc.Close()
		return nil, err
	}
	return tc, nil
}

// h1 is one HTTP/1.1 keep-alive connection, redialled when the server closes it.
type h1 struct {
	c   config
	nc  net.Conn
	br  *bufio.Reader
	req []byte
}

func newH1(c config) *h1 {
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: rateload\r\n\r\n", c.target.RequestURI(), c.target.Host)
	return &h1{c: c, req: []byte(req)}
}

func (h *h1) do(ctx context.Context) error {
	if h.nc == nil {
		nc, err := dial(ctx, h.c)
		if err != nil {
			return err
		}
		h.nc = nc
		if h.br == nil {
			h.br = bufio.NewReaderSize(nc, 16<<10)
		} else {
			h.br.Reset(nc)
		}
	}
	_ = h.nc.SetDeadline(time.Now().Add(h.c.timeout))
	if _, err := h.nc.Write(h.req); err != nil {
		h.close()
		return err
	}
	status, closed, err := readResponse(h.br)
	if err != nil || closed {
		h.close()
	}
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("status %d", status)
	}
	return nil
}

// readResponse reads one HTTP/1.1 response and discards its body, framed by
// Content-Length, chunked encoding or the end of the connection. It parses
// only what framing needs, so the client's own CPU per request stays a small
// fraction of the proxy's and 10,000 req/s fit on the load core; net/http's
// ReadResponse costs several times as much. closed reports that the
// connection cannot be reused.
func readResponse(br *bufio.Reader) (status int, closed bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, true, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, true, fmt.Errorf("malformed status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, true, fmt.Errorf("malformed status line %q", line)
	}
	length, chunked := int64(-1), false
	for {
		if line, err = br.ReadSlice('\n'); err != nil {
			return status, true, err
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return status, true, fmt.Errorf("malformed header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("content-length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return status, true, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("transfer-encoding")):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, []byte("connection")):
			closed = closed || bytes.Contains(bytes.ToLower(value), []byte("close"))
		}
	}
	switch {
	case status == http.StatusNoContent || status == http.StatusNotModified || status/100 == 1:
	case chunked:
		for {
			if line, err = br.ReadSlice('\n'); err != nil {
				return status, true, err
			}
			hex, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
			size, perr := strconv.ParseInt(string(hex), 16, 64)
			if perr != nil || size < 0 {
				return status, true, fmt.Errorf("bad chunk size %q", line)
			}
			if size == 0 {
				for { // trailer section, up to the empty line
					if line, err = br.ReadSlice('\n'); err != nil {
						return status, true, err
					}
					if len(bytes.TrimRight(line, "\r\n")) == 0 {
						return status, closed, nil
					}
				}
			}
			if _, err = br.Discard(int(size) + 2); err != nil {
				return status, true, err
			}
		}
	case length >= 0:
		if _, err = br.Discard(int(length)); err != nil {
			return status, true, err
		}
	default: // no framing: the body runs to the end of the connection
		_, err = io.Copy(io.Discard, br)
		return status, true, err
	}
	return status, closed, nil
}

func (h *h1) close() {
	if h.nc != nil {
		h.nc.Close()
		h.nc = nil
	}
}

// h2 sends over one of a shared set of HTTP/2 connections.
type h2 struct {
	req *http.Request
	cc  *http2.ClientConn
}

func (h *h2) do(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := h.cc.RoundTrip(h.req.WithContext(rctx))
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func (h *h2) close() {}

func h2conns(ctx context.Context, c config) ([]*http2.ClientConn, error) {
	t := &http2.Transport{AllowHTTP: c.tls == nil, TLSClientConfig: c.tls}
	ccs := make([]*http2.ClientConn, c.conns)
	for i := range ccs {
		nc, err := dial(ctx, c)
		if err != nil {
			return nil, err
		}
		if tc, ok := nc.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol != "h2" {
			return nil, fmt.Errorf("%s did not negotiate h2 (ALPN %q)", c.target.Host, tc.ConnectionState().NegotiatedProtocol)
		}
		if ccs[i], err = t.NewClientConn(nc); err != nil {
			return nil, err
		}
	}
	return ccs, nil
}

// h2StreamsPerConn is how many requests may be outstanding on one HTTP/2
// connection before the schedule waits: far above what the rates here need.
const h2StreamsPerConn = 8

func load(ctx context.Context, c config) (Report, error) {
	var doers []doer
	if c.h2 {
		ccs, err := h2conns(ctx, c)
		if err != nil {
			return Report{}, err
		}
		defer func() {
			for _, cc := range ccs {
				cc.Close()
			}
		}()
		req, err := http.NewRequest(http.MethodGet, c.target.String(), nil)
		if err != nil {
			return Report{}, err
		}
		req.Header.Set("User-Agent", "rateload")
		for i := 0; i < c.conns*h2StreamsPerConn; i++ {
			doers = append(doers, &h2{req: req, cc: ccs[i%len(ccs)]})
		}
	} else {
		for i := 0; i < c.conns; i++ {
			h := newH1(c)
			// Open every connection before the clock starts.
			nc, err := dial(ctx, c)
			if err != nil {
				return Report{}, err
			}
			h.nc, h.br = nc, bufio.NewReaderSize(nc, 16<<10)
			doers = append(doers, h)
		}
	}
	defer func() {
		for _, d := range doers {
			d.close()
		}
	}()

	total := int(int64(c.rate) * int64(c.duration) / int64(time.Second))
	interval := time.Second / time.Duration(c.rate)
	due := make(chan time.Time, total)
	tallies := make([]loadstat.Tally, len(doers))
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	start := time.Now().Add(20 * time.Millisecond)
	for i, d := range doers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := &tallies[i]
			for at := range due {
				if err := d.do(ctx); err != nil {
					t.Fail(err)
					continue
				}
				t.Success(time.Since(at))
			}
		}()
	}
	// The schedule: request i is due at start + i*interval. Sleeping wakes a
	// little late, so every wake-up releases all requests due by then.
schedule:
	for i := 0; i < total; {
		now := time.Now()
		for ; i < total; i++ {
			at := start.Add(time.Duration(i) * interval)
			if at.After(now) {
				break
			}
			due <- at
		}
		if i < total {
			select {
			case <-ctx.Done():
				break schedule
			case <-time.After(time.Until(start.Add(time.Duration(i) * interval))):
			}
		}
	}
	close(due)
	wg.Wait()
	elapsed := time.Since(start)
	var all loadstat.Tally
	for _, t := range tallies {
		all.Add(t)
	}
	p := all.PercentilesMs(0.5, 0.9, 0.99, 1)
	return Report{
		Requests: all.OK + all.Errs, OK: all.OK, Errors: all.Errs, FirstError: all.FirstErr,
		Seconds: elapsed.Seconds(), Rate: float64(all.OK) / elapsed.Seconds(),
		P50ms: p[0], P90ms: p[1], P99ms: p[2], MaxMs: p[3],
		ClientCPUms: float64(cpuTime()-cpu0) / 1e6,
	}, ctx.Err()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sseBackend serves event streams that send one event and then stay open,
// over HTTP/1.1 or prior-knowledge h2c.
func sseBackend(ctx context.Context, c config, out io.Writer) error {
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "listening %s\n", ln.Addr())
	if f, ok := out.(*os.File); ok {
		_ = f.Sync()
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Accel-Buffering", "no") // nginx: pass events through unbuffered
		_, _ = io.WriteString(w, "data: open\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-ctx.Done():
		}
	})}
	// HTTP/1.1 for the proxies; prior-knowledge h2c too, so sse-hold -h2 can be
	// tested without a proxy in between.
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// HoldReport is what sse-hold writes to -ready and prints at the end.
type HoldReport struct {
	Open       int     `json:"open"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"firstError,omitempty"`
	OpenSecs   float64 `json:"openSeconds"`
}

// sseHold opens c.streams event streams through the target and holds them.
func sseHold(ctx context.Context, c config, out io.Writer) error {
	conns := make([]io.Closer, c.streams)
	var open, errs atomic.Int64
	var firstErr atomic.Value
	next := atomic.Int64{}
	var wg sync.WaitGroup
	t0 := time.Now()
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", c.target.RequestURI(), c.target.Host)
	open1 := func(i int) (io.Closer, error) { return openStream(ctx, c, req) }
	if c.h2 {
		// Streams i*m .. i*m+m-1 share connection i; every connection is
		// dialled up front, so a proxy's per-connection cost is counted once.
		ccs, err := h2conns(ctx, config{target: c.target, tls: c.tls, timeout: c.timeout, conns: (c.streams + c.perConn - 1) / c.perConn})
		if err != nil {
			return err
		}
		defer func() {
			for _, cc := range ccs {
				cc.Close()
			}
		}()
		open1 = func(i int) (io.Closer, error) { return openStreamH2(ctx, c, ccs[i/c.perConn]) }
	}
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= c.streams || ctx.Err() != nil {
					return
				}
				nc, err := open1(i)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				conns[i] = nc
				open.Add(1)
			}
		}()
	}
	wg.Wait()
	rep := HoldReport{Open: int(open.Load()), Errors: int(errs.Load()), OpenSecs: time.Since(t0).Seconds()}
	if s, ok := firstErr.Load().(string); ok {
		rep.FirstError = s
	}
	js, _ := json.Marshal(rep)
	if c.ready != "" {
		if err := os.WriteFile(c.ready+".tmp", append(js, '\n'), 0o644); err != nil {
			return err
		}
		if err := os.Rename(c.ready+".tmp", c.ready); err != nil {
			return err
		}
	}
	select {
	case <-ctx.Done():
	case <-time.After(c.hold):
	}
	for _, nc := range conns {
		if nc != nil {
			nc.Close()
		}
	}
	_, err := fmt.Fprintf(out, "%s\n", js)
	return err
}

func openStream(ctx context.Context, c config, req string) (net.Conn, error) {
	nc, err := dial(ctx, c)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(3 * c.timeout))
	if _, err := io.WriteString(nc, req); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 1024)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		nc.Close()
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data:") {
		nc.Close()
		return nil, fmt.Errorf("no first event (read %q, %v)", line, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, nil
}

// openStreamH2 opens one event stream on an HTTP/2 connection and returns
// its body, held open until closed.
func openStreamH2(ctx context.Context, c config, cc *http2.ClientConn) (io.Closer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.target.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := cc.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	line, err := bufio.NewReaderSize(resp.Body, 256).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data:") {
		resp.Body.Close()
		return nil, fmt.Errorf("no first event (read %q, %v)", line, err)
	}
	return resp.Body, nil
}
