// Command hsload measures TLS handshake throughput against one HTTPS server:
// every request opens a new TCP connection, completes a TLS 1.3 handshake,
// sends one HTTP/1.1 GET with "Connection: close", reads the whole response
// and closes. With -resume the clients share a session cache, so after the
// first connection every handshake is a PSK resumption from a session ticket;
// without it every handshake is a full one (certificate, signature, key
// exchange). It prints one JSON object with the counts and latency percentiles.
//
// It owns only load generation and counting; it never retries, never keeps a
// connection alive, and is meant for loopback servers under test.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kvgate/kvgate/benchmarks/internal/loadstat"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hsload:", err)
		os.Exit(1)
	}
}

type config struct {
	target   *url.URL
	conns    int
	duration time.Duration
	resume   bool
	timeout  time.Duration
	curve    tls.CurveID
	plain    bool
}

// curves are the key-exchange groups -curve accepts.
var curves = map[string]tls.CurveID{
	"x25519":         tls.X25519,
	"p256":           tls.CurveP256,
	"x25519mlkem768": tls.X25519MLKEM768,
}

func parse(args []string) (config, error) {
	var c config
	var target, curve string
	fs := flag.NewFlagSet("hsload", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&target, "url", "", "https://host:port/path to GET (required)")
	fs.IntVar(&c.conns, "c", 16, "concurrent clients, each one connection at a time")
	fs.DurationVar(&c.duration, "d", 10*time.Second, "how long to run")
	fs.BoolVar(&c.resume, "resume", false, "share a TLS session cache so handshakes resume (PSK) instead of full")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "limit for one connection: dial, handshake, request and response")
	fs.BoolVar(&c.plain, "plain", false, "no TLS: plain TCP to an http:// URL, the baseline of connection + request cost")
	fs.StringVar(&curve, "curve", "x25519", "the one key-exchange group offered: x25519 | p256 | x25519mlkem768")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("hsload: %w (see -h)", err)
	}
	scheme, port := "https", "443"
	if c.plain {
		scheme, port = "http", "80"
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme != scheme || u.Host == "" {
		return c, fmt.Errorf("hsload: -url must be %s://host:port/path, got %q", scheme, target)
	}
	if c.resume && c.plain {
		return c, errors.New("hsload: -resume and -plain exclude each other")
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	c.target = u
	id, ok := curves[strings.ToLower(curve)]
	if !ok {
		return c, fmt.Errorf("hsload: -curve %q is not one of x25519, p256, x25519mlkem768", curve)
	}
	c.curve = id
	if c.conns < 1 || c.duration <= 0 || c.timeout <= 0 {
		return c, errors.New("hsload: -c, -d and -timeout must be positive")
	}
	return c, nil
}

// tally is one client's counts; clients never share one.
type tally struct {
	loadstat.Tally
	resumed int
}

// Report is what hsload prints.
type Report struct {
	Handshakes    int     `json:"handshakes"` // completed connections with a 200 response
	Resumed       int     `json:"resumed"`    // of those, how many resumed a session
	Errors        int     `json:"errors"`
	FirstError    string  `json:"firstError,omitempty"`
	Seconds       float64 `json:"seconds"`
	PerSecond     float64 `json:"perSecond"`
	P50Ms         float64 `json:"p50ms"`
	P99Ms         float64 `json:"p99ms"`
	Connections   int     `json:"clients"`
	ResumeEnabled bool    `json:"resumeEnabled"`
	// ClientCPUms is hsload's own user+system CPU time for the run, to tell
	// whether the client rather than the server was the bottleneck.
	ClientCPUms float64 `json:"clientCpuMs"`
}

// summarize merges the clients' tallies over elapsed wall time.
func summarize(ts []tally, elapsed time.Duration, c config) Report {
	var all loadstat.Tally
	resumed := 0
	for _, t := range ts {
		all.Add(t.Tally)
		resumed += t.resumed
	}
	r := Report{Handshakes: all.OK, Resumed: resumed, Errors: all.Errs, FirstError: all.FirstErr,
		Seconds: elapsed.Seconds(), Connections: c.conns, ResumeEnabled: c.resume}
	if elapsed > 0 {
		r.PerSecond = float64(r.Handshakes) / elapsed.Seconds()
	}
	p := all.PercentilesMs(0.50, 0.99)
	r.P50Ms, r.P99Ms = p[0], p[1]
	return r
}

func run(ctx context.Context, args []string, out io.Writer) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	tc := &tls.Config{
		// The servers under test use a throwaway self-signed certificate. The
		// server's CertificateVerify signature is still checked by crypto/tls;
		// only the chain check is skipped, to keep the client's CPU down.
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionTLS13,
		NextProtos:         []string{"http/1.1"},
		CurvePreferences:   []tls.CurveID{c.curve},
		ServerName:         c.target.Hostname(),
	}
	if c.resume {
		tc.ClientSessionCache = tls.NewLRUClientSessionCache(c.conns * 4)
	}
	req := "GET " + c.target.RequestURI() + " HTTP/1.1\r\nHost: " + c.target.Host + "\r\nConnection: close\r\n\r\n"
	ctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	ts := make([]tally, c.conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range ts {
		wg.Go(func() { client(ctx, c, tc, req, &ts[i]) })
	}
	wg.Wait()
	r := summarize(ts, time.Since(start), c)
	r.ClientCPUms = ownCPU().Seconds() * 1000
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// client opens connections one after another until ctx ends.
func client(ctx context.Context, c config, tc *tls.Config, req string, t *tally) {
	end, _ := ctx.Deadline()
	for ctx.Err() == nil && time.Now().Before(end) {
		t0 := time.Now()
		resumed, err := once(ctx, c, tc, req)
		switch {
		case err == nil:
			t.Success(time.Since(t0))
			if resumed {
				t.resumed++
			}
		case ctx.Err() != nil || !time.Now().Before(end):
			return // cut off by the end of the run: not the server's fault
		default:
			t.Fail(err)
		}
	}
}

// once does one connection: dial, handshake (unless -plain), one request, the
// whole response. It reports whether the TLS session was resumed.
func once(ctx context.Context, c config, tc *tls.Config, req string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var conn net.Conn
	var err error
	if c.plain {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", c.target.Host)
	} else {
		d := tls.Dialer{Config: tc}
		conn, err = d.DialContext(ctx, "tcp", c.target.Host)
	}
	if err != nil {
		return false, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, req); err != nil {
		return false, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return false, err
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("hsload: status %d", resp.StatusCode)
	}
	if tc, ok := conn.(*tls.Conn); ok {
		return tc.ConnectionState().DidResume, nil
	}
	return false, nil
}

// ownCPU is this process's user+system CPU time so far, 0 if unknown.
func ownCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
