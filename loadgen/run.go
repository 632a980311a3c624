package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/proxy"
	"github.com/kvgate/kvgate/sim"
)

// Scenario is one way of picking endpoints, replayed against fresh simulators.
type Scenario struct {
	// Name labels the scenario in reports.
	Name string
	// Note says what the scenario stands for (for example which baseline it
	// approximates and how).
	Note string
	// Inference is the pool's inference block: picker, scorers, block size,
	// load bound, session header. Its zero value means kvgate's defaults.
	Inference config.Inference
	// Balancer is the pool's plain balancer (least-request or round-robin),
	// used by kvgate builds whose inference pools fall back to it; "" means
	// the default.
	Balancer string
	// Replicas is the number of kvgate instances in front of the same
	// simulators; the client spreads requests over them round-robin. 0 means 1.
	Replicas int
	// Session sends each request's conversation key in
	// Inference.SessionHeader (default x-session-id).
	Session bool
}

// Options are shared by every scenario of one replay.
type Options struct {
	// Workload is replayed in order; arrival i is Workload[i].Timestamp ms
	// × TimeScale after the start.
	Workload []Request
	// TimeScale multiplies arrival times; 0 means 1.
	TimeScale float64
	// Simulators is the number of model servers; 0 means 4.
	Simulators int
	// Sim configures each simulator. Its TimeScale also converts measured
	// durations back into model time in the Report.
	Sim sim.Config
	// Client sends the requests; its HTTP and SessionHeader fields are
	// filled in by Run when empty.
	Client Client
	// MaxInFlight bounds the requests in flight at once; a request whose
	// arrival time has come waits for a slot. 0 means no bound (open loop).
	MaxInFlight int
	// HotShare is passed to SessionKeys; 0 means DefaultHotShare.
	HotShare float64
	// Progress, when set, is called after each request ends with the number
	// done and the total, from one goroutine at a time.
	Progress func(done, total int)
	// Log receives kvgate's logs; nil discards them.
	Log *slog.Logger
	// Admin, when set, is the admin address of the first kvgate replica
	// (its status page and /debug endpoints); "" leaves admin off.
	Admin string
	// Setup, when set, is called with each kvgate before it starts (the
	// demo mounts the status page with it).
	Setup func(*proxy.Proxy)
	// Hold, when set, is called with the scenario's report after the
	// replay, while kvgate and the simulators still run (the demo keeps its
	// status page up with it until ctx ends).
	Hold func(ctx context.Context, r Report)
}

// Report summarises one scenario. Durations and rates are in model time:
// wall time divided by the simulators' time scale, so that they read as if
// the simulators ran at real speed.
type Report struct {
	Scenario, Note string
	Replicas       int
	// Requests is the number sent; Failed how many did not complete.
	Requests, Failed int
	// FirstError is the first failure's message, or "".
	FirstError string
	// HitRate is the simulators' prefix-cache hit tokens over looked-up
	// tokens, summed over all simulators: 0..1.
	HitRate float64
	// TTFTP50 and TTFTP99 are client-side times to the first content chunk.
	TTFTP50, TTFTP99 time.Duration
	// OutputTokensPerSec is completion tokens over the replay's duration.
	OutputTokensPerSec float64
	// PromptTokens and CachedTokens sum the usage chunks of the requests that
	// completed (cached tokens are prompt_tokens_details.cached_tokens).
	PromptTokens, CachedTokens int
	// Share is each simulator's fraction of the requests it received.
	Share []float64
	// MaxMeanShare is max(Share)/mean(Share): 1 is perfectly even.
	MaxMeanShare float64
	// Duration is the model-time length of the replay.
	Duration time.Duration
	// Wall is the wall-clock length of the replay.
	Wall time.Duration
	// Runs is how many replays a MedianReport summarises (0 or 1: one), and
	// HitRateMin and HitRateMax the extremes of their hit rates.
	Runs                   int
	HitRateMin, HitRateMax float64
}

// DefaultHotShare is the SessionKeys share above which a leading block is
// shared (a system prompt) rather than part of a conversation's key.
const DefaultHotShare = 0.05

func (o *Options) defaults() {
	if o.TimeScale == 0 {
		o.TimeScale = 1
	}
	if o.Simulators <= 0 {
		o.Simulators = 4
	}
	if o.Sim.TimeScale == 0 {
		o.Sim.TimeScale = 1
	}
	if o.HotShare == 0 {
		o.HotShare = DefaultHotShare
	}
}

// Run replays o.Workload through fresh simulators and kvgate configured by
// sc, and reports. It returns an error only when the setup fails; failed
// requests are counted in the Report. Everything it starts is stopped
// before it returns.
func Run(ctx context.Context, o Options, sc Scenario) (Report, error) {
	o.defaults()
	if len(o.Workload) == 0 {
		return Report{}, errors.New("loadgen: the workload is empty; give a trace or a synthetic spec")
	}
	sims, err := startSimsFor(ctx, o.Simulators, o.Sim, sc)
	if err != nil {
		return Report{}, err
	}
	defer func() {
		for _, s := range sims {
			_ = s.Close()
		}
	}()
	addrs := make([]string, len(sims))
	for i, s := range sims {
		addrs[i] = s.Addr
	}
	urls, stop, err := startProxies(sc, addrs, o)
	if err != nil {
		return Report{}, err
	}
	defer stop()

	cl := o.Client
	if cl.HTTP == nil {
		cl.HTTP = NewHTTPClient(256)
		defer cl.HTTP.CloseIdleConnections()
	}
	var keys []string
	if sc.Session {
		cl.SessionHeader = sessionHeader(sc.Inference)
		keys = SessionKeys(o.Workload, o.HotShare)
	}
	results, wall := replay(ctx, &cl, o, urls, keys)
	r := summarise(sc, o, results, sims, wall)
	if o.Hold != nil {
		o.Hold(ctx, r)
	}
	return r, nil
}

func sessionHeader(in config.Inference) string {
	if in.SessionHeader != "" {
		return in.SessionHeader
	}
	return "x-session-id"
}

func startSims(ctx context.Context, n int, cfg sim.Config) ([]*sim.Running, error) {
	var out []*sim.Running
	for range n {
		s, err := sim.Start(ctx, "127.0.0.1:0", cfg)
		if err != nil {
			for _, r := range out {
				_ = r.Close()
			}
			return nil, fmt.Errorf("loadgen: start simulator: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}

// Config returns the kvgate configuration a scenario runs with: one
// plaintext listener named "replay" on 127.0.0.1:0, no admin listener, no
// access log, and one route to one inference pool over endpoints.
func (sc Scenario) Config(endpoints []string) (*config.Config, error) {
	in := sc.Inference
	if sc.Session && in.SessionHeader == "" {
		in.SessionHeader = sessionHeader(in)
	}
	c := &config.Config{
		Admin:     config.Admin{Address: "off"},
		Listeners: []config.Listener{{Name: "replay", Address: "127.0.0.1:0", Protocols: []string{"http1"}}},
		Routes: []config.Route{{
			Name:     "replay",
			Backends: []config.Backend{{Pool: "sims"}},
		}},
		Pools: []config.Pool{{
			Name:      "sims",
			Endpoints: slices.Clone(endpoints),
			Balancer:  sc.Balancer,
			Inference: &in,
		}},
		AccessLog: config.AccessLog{Path: "off"},
		Source:    "loadgen scenario " + sc.Name,
	}
	config.Default(c)
	if err := config.Validate(c); err != nil {
		return nil, fmt.Errorf("loadgen: scenario %q: %w", sc.Name, err)
	}
	return c, nil
}

func startProxies(sc Scenario, endpoints []string, o Options) ([]string, func(), error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var ps []*proxy.Proxy
	stop := func() {
		for _, p := range ps {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = p.Shutdown(ctx)
			cancel()
		}
	}
	var urls []string
	for i := range max(sc.Replicas, 1) {
		cfg, err := sc.Config(endpoints)
		if err != nil {
			stop()
			return nil, nil, err
		}
		if i == 0 && o.Admin != "" {
			cfg.Admin.Address = o.Admin
		}
		p, err := proxy.New(cfg, log)
		if err != nil {
			stop()
			return nil, nil, fmt.Errorf("loadgen: scenario %q: %w", sc.Name, err)
		}
		if o.Setup != nil {
			o.Setup(p)
		}
		if err := p.Start(); err != nil {
			stop()
			return nil, nil, fmt.Errorf("loadgen: scenario %q: %w", sc.Name, err)
		}
		ps = append(ps, p)
		urls = append(urls, "http://"+p.Listener("replay").Addr().String())
	}
	return urls, stop, nil
}

// replay sends every request at its scaled arrival time, spreading them over
// urls round-robin, and waits for all of them.
func replay(ctx context.Context, cl *Client, o Options, urls []string, keys []string) ([]Result, time.Duration) {
	results := make([]Result, len(o.Workload))
	var wg sync.WaitGroup
	var done atomic.Int64
	var progressMu sync.Mutex
	var slots chan struct{}
	if o.MaxInFlight > 0 {
		slots = make(chan struct{}, o.MaxInFlight)
	}
	start := time.Now()
	first := o.Workload[0].Timestamp
	for i, req := range o.Workload {
		at := time.Duration(float64(req.Timestamp-first) * o.TimeScale * float64(time.Millisecond))
		if d := time.Until(start.Add(at)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		if slots != nil {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			for j := i; j < len(o.Workload); j++ {
				results[j].Err = ctx.Err()
			}
			break
		}
		key := ""
		if keys != nil {
			key = keys[i]
		}
		wg.Go(func() {
			results[i] = cl.Do(ctx, urls[i%len(urls)], req, key)
			if slots != nil {
				<-slots
			}
			if o.Progress != nil {
				progressMu.Lock() // Progress is called from one goroutine at a time
				o.Progress(int(done.Add(1)), len(o.Workload))
				progressMu.Unlock()
			} else {
				done.Add(1)
			}
		})
	}
	wg.Wait()
	return results, time.Since(start)
}

func summarise(sc Scenario, o Options, results []Result, sims []*sim.Running, wall time.Duration) Report {
	scale := o.Sim.TimeScale
	model := func(d time.Duration) time.Duration { return time.Duration(float64(d) / scale) }
	r := Report{Scenario: sc.Name, Note: sc.Note, Replicas: max(sc.Replicas, 1), Requests: len(results), Wall: wall, Duration: model(wall)}
	var ttft []time.Duration
	out := 0
	for _, res := range results {
		if res.Err != nil {
			r.Failed++
			if r.FirstError == "" {
				r.FirstError = res.Err.Error()
			}
			continue
		}
		ttft = append(ttft, res.TTFT)
		out += res.OutputTokens
		r.PromptTokens += res.PromptTokens
		r.CachedTokens += res.CachedTokens
	}
	slices.Sort(ttft)
	r.TTFTP50, r.TTFTP99 = model(percentile(ttft, 0.50)), model(percentile(ttft, 0.99))
	if r.Duration > 0 {
		r.OutputTokensPerSec = float64(out) / r.Duration.Seconds()
	}
	var hits, queries, total uint64
	counts := make([]uint64, len(sims))
	for i, s := range sims {
		st := s.Server.Stats()
		hits += st.PrefixHitTokens
		queries += st.PrefixQueryTokens
		counts[i] = st.Requests
		total += st.Requests
	}
	if queries > 0 {
		r.HitRate = float64(hits) / float64(queries)
	}
	r.Share = make([]float64, len(sims))
	peak := 0.0
	for i, c := range counts {
		if total > 0 {
			r.Share[i] = float64(c) / float64(total)
		}
		peak = max(peak, r.Share[i])
	}
	if total > 0 {
		r.MaxMeanShare = peak * float64(len(sims))
	}
	return r
}

// percentile returns the q-quantile (0..1) of sorted by the nearest-rank
// rule, or 0 for an empty slice.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
