package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/kvgate/kvgate/benchmarks/internal/loadstat"
)

// LoadResult is what `meshbench load` prints: one JSON object. Latencies are
// measured from each request's scheduled send time, not from when a
// connection became free, so a server that falls behind shows its queueing
// in the percentiles (the correction wrk2 makes for coordinated omission).
type LoadResult struct {
	Tool         string         `json:"tool"` // always "meshbench load"
	Mode         string         `json:"mode"` // http | chat
	URL          string         `json:"url"`
	TargetRate   float64        `json:"targetRate"`
	Conns        int            `json:"conns"`
	DurationS    float64        `json:"durationS"` // measured window, warm-up excluded
	Sent         int            `json:"sent"`
	OK           int            `json:"ok"`
	Errors       int            `json:"errors"`
	FirstError   string         `json:"firstError,omitempty"`
	Status       map[string]int `json:"status,omitempty"` // answers by HTTP status
	AchievedRate float64        `json:"achievedRate"`     // OK answers per second
	LatencyMs    Percentiles    `json:"latencyMs"`
	TTFTMs       *Percentiles   `json:"ttftMs,omitempty"` // chat: time to the first content event
}

// Percentiles of one latency distribution, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func percentiles(t *loadstat.Tally) Percentiles {
	v := t.PercentilesMs(0.50, 0.90, 0.99, 1)
	return Percentiles{v[0], v[1], v[2], v[3]}
}

type loadOpts struct {
	url       string
	host      string
	rate      float64
	conns     int
	duration  time.Duration
	warmup    time.Duration
	timeout   time.Duration
	chat      bool
	model     string
	maxTokens int
	prompt    string
}

func (o *loadOpts) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.StringVar(&o.url, "url", "", "target `URL` (http://HOST:PORT/PATH); chat mode posts to it")
	fs.StringVar(&o.host, "host", "", "Host header to send (default: the URL's host)")
	fs.Float64Var(&o.rate, "rate", 1000, "requests per `SECOND`, sent on schedule whether or not earlier ones answered")
	fs.IntVar(&o.conns, "conns", 16, "`N` keep-alive connections (one request at a time each)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured `TIME`")
	fs.DurationVar(&o.warmup, "warmup", 0, "`TIME` of load before the measured window, not counted")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request `TIME` limit")
	fs.BoolVar(&o.chat, "chat", false, "send streamed OpenAI chat completions and measure time to first token")
	fs.StringVar(&o.model, "model", "sim-model", "chat: the model `NAME`")
	fs.IntVar(&o.maxTokens, "max-tokens", 32, "chat: max_tokens of each request")
	fs.StringVar(&o.prompt, "prompt", "Summarise the mesh benchmark in one sentence.", "chat: the user message")
	return fs
}

func runLoad(ctx context.Context, args []string, stdout io.Writer) error {
	var o loadOpts
	if err := parseFlags(o.flagSet(), args, stdout); err != nil {
		return err
	}
	u, err := url.Parse(o.url)
	switch {
	case o.url == "":
		return usageError{"load: --url is required"}
	case err != nil || (u.Scheme != "http") || u.Host == "":
		return usageError{fmt.Sprintf("load: --url %q: give http://HOST:PORT/PATH (TLS is the mesh's job, not the client's)", o.url)}
	case o.rate <= 0 || o.rate > 1e6:
		return usageError{fmt.Sprintf("load: --rate %g: give a rate between 0 and 1000000 requests per second", o.rate)}
	case o.conns < 1 || o.conns > 10000:
		return usageError{fmt.Sprintf("load: --conns %d: give 1 to 10000", o.conns)}
	case o.duration <= 0:
		return usageError{fmt.Sprintf("load: --duration %s: give a positive duration like 120s", o.duration)}
	case o.warmup < 0 || o.timeout <= 0:
		return usageError{"load: --warmup must be 0 or more and --timeout positive"}
	}
	res, err := load(ctx, o)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// outcome is one request's result.
type outcome struct {
	measured bool
	lat      time.Duration
	done     time.Time
	ttft     time.Duration // chat only; 0 when none
	status   int
	err      error
}

// load sends rate requests per second for warmup+duration over conns
// connections and summarises the measured window.
func load(ctx context.Context, o loadOpts) (*LoadResult, error) {
	var body []byte
	if o.chat {
		var err error
		body, err = json.Marshal(map[string]any{
			"model":      o.model,
			"stream":     true,
			"max_tokens": o.maxTokens,
			"messages":   []map[string]string{{"role": "user", "content": o.prompt}},
		})
		if err != nil {
			return nil, err
		}
	}
	interval := time.Duration(float64(time.Second) / o.rate)
	total := int(o.rate * (o.warmup + o.duration).Seconds())
	if total < 1 {
		total = 1
	}
	// Each worker owns one transport limited to one connection, so the load
	// uses exactly conns connections, as fortio -c and wrk2 -c do.
	start := time.Now().Add(50 * time.Millisecond) // room to start the workers
	measureFrom := start.Add(o.warmup)
	jobs := make(chan time.Time, 4096)
	results := make(chan outcome, 4096)
	var wg sync.WaitGroup
	for range o.conns {
		tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, DisableCompression: true, ResponseHeaderTimeout: o.timeout}
		hc := &http.Client{Transport: tr, Timeout: o.timeout}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer tr.CloseIdleConnections()
			for due := range jobs {
				results <- doOne(ctx, hc, o, body, due, measureFrom)
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := range total {
			due := start.Add(time.Duration(i) * interval)
			if d := time.Until(due); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
			select {
			case jobs <- due:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()

	res := &LoadResult{Tool: "meshbench load", Mode: "http", URL: o.url, TargetRate: o.rate, Conns: o.conns,
		DurationS: o.duration.Seconds(), Status: map[string]int{}}
	if o.chat {
		res.Mode = "chat"
	}
	var lat, ttft loadstat.Tally
	last := measureFrom.Add(o.duration)
	for r := range results {
		// A request belongs to the measured window by its scheduled time.
		if !r.measured {
			continue
		}
		res.Sent++
		if r.status != 0 {
			res.Status[strconv.Itoa(r.status)]++
		}
		if r.err != nil {
			lat.Fail(r.err)
			continue
		}
		lat.Success(r.lat)
		if r.done.After(last) {
			last = r.done
		}
		if o.chat {
			ttft.Success(r.ttft)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load: interrupted: %w", err)
	}
	res.OK, res.Errors, res.FirstError = lat.OK, lat.Errs, lat.FirstErr
	// Answers per second over the measured window, stretched to the last
	// answer when the server fell behind: a server that cannot keep up
	// shows a rate below the target.
	res.AchievedRate = math.Round(float64(res.OK)/last.Sub(measureFrom).Seconds()*10) / 10
	res.LatencyMs = percentiles(&lat)
	if o.chat {
		p := percentiles(&ttft)
		res.TTFTMs = &p
	}
	if len(res.Status) == 0 {
		res.Status = nil
	}
	return res, nil
}

// doOne sends one request scheduled at due and reads the whole answer.
func doOne(ctx context.Context, hc *http.Client, o loadOpts, body []byte, due, measureFrom time.Time) outcome {
	out := outcome{measured: !due.Before(measureFrom)}
	method, rd := http.MethodGet, io.Reader(nil)
	if o.chat {
		method, rd = http.MethodPost, bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, o.url, rd)
	if err != nil {
		out.err = err
		return out
	}
	if o.host != "" {
		req.Host = o.host
	}
	if o.chat {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
	}
	resp, err := hc.Do(req)
	if err != nil {
		out.err = err
		return out
	}
	defer resp.Body.Close()
	out.status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		out.err = fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
		return out
	}
	if o.chat {
		first, err := readSSE(resp.Body)
		if err != nil {
			out.err = err
			return out
		}
		out.ttft = first.Sub(due)
	} else if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		out.err = err
		return out
	}
	out.done = time.Now()
	out.lat = out.done.Sub(due)
	return out
}

// readSSE reads a server-sent event stream to its end ("data: [DONE]") and
// returns when the first event with content arrived. A stream that ends
// before [DONE] or carries no content is an error.
func readSSE(r io.Reader) (time.Time, error) {
	var first time.Time
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 16<<10), 1<<20)
	for sc.Scan() {
		data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data:"))
		if !ok {
			continue
		}
		data = bytes.TrimSpace(data)
		if string(data) == "[DONE]" {
			if first.IsZero() {
				return first, errors.New("stream ended with no content event")
			}
			return first, nil
		}
		if first.IsZero() && bytes.Contains(data, []byte(`"content"`)) {
			first = time.Now()
		}
	}
	return first, fmt.Errorf("stream cut before [DONE]: %w", errors.Join(sc.Err(), io.ErrUnexpectedEOF))
}
