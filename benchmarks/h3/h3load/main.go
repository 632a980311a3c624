// Command h3load measures HTTP/3 request throughput against one server: it
// opens M QUIC connections (one http3.Transport each) and runs N request loops
// spread evenly over them, each loop sending GETs one after another on new
// streams for a fixed duration. It counts successes (status 200 and, with
// -size, exactly that many body bytes) and prints one JSON object with the
// rate and latency percentiles.
//
// It owns only load generation and counting; it never retries a failed
// request and is meant for loopback servers under test.
package main

import (
	"github.com/kvgate/kvgate/benchmarks/internal/loadstat"

	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/quic-go/quic-go/http3"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "h3load:", err)
		os.Exit(1)
	}
}

type config struct {
	target   *url.URL
	streams  int // concurrent request loops in all
	conns    int // QUIC connections they share
	duration time.Duration
	timeout  time.Duration
	size     int64 // expected body bytes; -1 = any
}

func parse(args []string) (config, error) {
	var c config
	var target string
	fs := flag.NewFlagSet("h3load", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&target, "url", "", "https://host:port/path to GET (required)")
	fs.IntVar(&c.streams, "c", 32, "concurrent requests (streams) in all")
	fs.IntVar(&c.conns, "conns", 4, "QUIC connections the streams are spread over (at most -c)")
	fs.DurationVar(&c.duration, "d", 10*time.Second, "how long to run")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "limit for one request")
	fs.Int64Var(&c.size, "size", -1, "count a response as good only with exactly this many body bytes (-1 = any)")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("h3load: %w (see -h)", err)
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return c, fmt.Errorf("h3load: -url must be https://host:port/path, got %q", target)
	}
	c.target = u
	if c.streams < 1 || c.conns < 1 || c.duration <= 0 || c.timeout <= 0 {
		return c, errors.New("h3load: -c, -conns, -d and -timeout must be positive")
	}
	if c.conns > c.streams {
		return c, fmt.Errorf("h3load: -conns %d is more than -c %d: some connections would carry no request", c.conns, c.streams)
	}
	return c, nil
}

// Report is what h3load prints.
type Report struct {
	Requests    int     `json:"requests"` // good responses
	Errors      int     `json:"errors"`
	FirstError  string  `json:"firstError,omitempty"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"perSecond"`
	P50Ms       float64 `json:"p50ms"`
	P90Ms       float64 `json:"p90ms"`
	P99Ms       float64 `json:"p99ms"`
	Streams     int     `json:"streams"`
	Connections int     `json:"connections"`
	// ClientCPUms is h3load's own user+system CPU time, to tell whether the
	// client rather than the server was the bottleneck.
	ClientCPUms float64 `json:"clientCpuMs"`
}

func summarize(ts []loadstat.Tally, elapsed time.Duration, c config) Report {
	var all loadstat.Tally
	for _, t := range ts {
		all.Add(t)
	}
	r := Report{Requests: all.OK, Errors: all.Errs, FirstError: all.FirstErr,
		Seconds: elapsed.Seconds(), Streams: c.streams, Connections: c.conns}
	if elapsed > 0 {
		r.PerSecond = float64(r.Requests) / elapsed.Seconds()
	}
	p := all.PercentilesMs(0.50, 0.90, 0.99)
	r.P50Ms, r.P90Ms, r.P99Ms = p[0], p[1], p[2]
	return r
}

func run(ctx context.Context, args []string, out io.Writer) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	trs := make([]*http3.Transport, c.conns)
	for i := range trs {
		trs[i] = &http3.Transport{TLSClientConfig: &tls.Config{
			// Throwaway self-signed certificates on loopback; crypto/tls still
			// checks the handshake signature.
			InsecureSkipVerify: true,
		}}
		defer trs[i].Close()
	}
	ctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	ts := make([]loadstat.Tally, c.streams)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range ts {
		wg.Go(func() { loop(ctx, c, trs[i%len(trs)], &ts[i]) })
	}
	wg.Wait()
	r := summarize(ts, time.Since(start), c)
	r.ClientCPUms = ownCPU().Seconds() * 1000
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// loop sends requests one after another over tr until ctx ends.
func loop(ctx context.Context, c config, tr *http3.Transport, t *loadstat.Tally) {
	end, _ := ctx.Deadline()
	for ctx.Err() == nil && time.Now().Before(end) {
		t0 := time.Now()
		err := get(ctx, c, tr)
		switch {
		case err == nil:
			t.Success(time.Since(t0))
		case ctx.Err() != nil || !time.Now().Before(end):
			return // cut off by the end of the run: not the server's fault
		default:
			t.Fail(err)
		}
	}
}

func get(ctx context.Context, c config, tr *http3.Transport) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.target.String(), nil)
	if err != nil {
		return err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("h3load: status %d", resp.StatusCode)
	case c.size >= 0 && n != c.size:
		return fmt.Errorf("h3load: body of %d bytes, want %d", n, c.size)
	}
	return nil
}

// ownCPU is this process's user+system CPU time so far, 0 if unknown.
func ownCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
