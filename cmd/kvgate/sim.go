package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/kvgate/kvgate/sim"
)

// simOpts are the flags of `kvgate sim`.
type simOpts struct {
	addr     string
	count    int
	sim      sim.Config
	kvOffset int
	kvReplay int
	kvTopic  string
}

func (o *simOpts) flagSet() *flag.FlagSet {
	o.sim = sim.DefaultConfig()
	fs := newFlagSet("sim")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8000", "listen on `HOST:PORT` with the first simulator (port 0 picks free ports)")
	fs.IntVar(&o.count, "count", 1, "`N` simulators, on consecutive ports")
	fs.StringVar(&o.sim.Model, "model", o.sim.Model, "served model `NAME`")
	fs.IntVar(&o.sim.NumGPUBlocks, "num-gpu-blocks", o.sim.NumGPUBlocks, "KV cache size in `BLOCKS` of 16 tokens, per simulator")
	fs.IntVar(&o.sim.MaxBatch, "max-batch", o.sim.MaxBatch, "`N` requests running at once, per simulator")
	fs.Float64Var(&o.sim.TimeScale, "time-scale", 1, "multiply every simulated duration by `X` (0.1 = ten times faster)")
	fs.IntVar(&o.kvOffset, "kv-events-offset", 0, "publish KV events in vLLM's format on each simulator's port + `N` (0: off); kvgate's inference.kvEvents.endpoint: \"+N\"")
	fs.IntVar(&o.kvReplay, "kv-replay-offset", 0, "serve KV event replay on each simulator's port + `N` (0: off; needs --kv-events-offset)")
	fs.StringVar(&o.kvTopic, "kv-events-topic", "", "KV event `TOPIC` (vLLM's default is empty)")
	return fs
}

var cmdSim = &command{
	name:     "sim",
	synopsis: "[flags]",
	summary:  "serve simulated vLLM model servers (no GPU) on consecutive ports",
	about: `Serve vLLM-compatible model servers that need no GPU, with a real paged prefix cache and
vLLM's metrics, until SIGINT or SIGTERM. Each listens on its own port, counting up from
--addr; their addresses are logged as JSON on stderr. Run it in its own terminal, or in
the background, in front of which kvgate run proxies.`,
	maxArgs: 0,
	groups: []flagGroup{
		{"Listening", []string{"addr", "count"}},
		{"Model server", []string{"model", "num-gpu-blocks", "max-batch", "time-scale"}},
		{"KV events", []string{"kv-events-offset", "kv-replay-offset", "kv-events-topic"}},
	},
	flags: func() *flag.FlagSet { return new(simOpts).flagSet() },
}

// runSim serves count vLLM-compatible simulators on consecutive ports from
// --addr until ctx ends, logging JSON lines to logOut.
func runSim(ctx context.Context, args []string, stdout, logOut io.Writer) error {
	var o simOpts
	if _, ok, err := cmdSim.parse(o.flagSet(), args, stdout); !ok {
		return err
	}
	if o.count < 1 {
		return usageError("sim: --count %d: give 1 or more", o.count)
	}
	addrs, err := consecutive(o.addr, o.count)
	if err != nil {
		return &exitError{2, err}
	}
	if o.kvReplay != 0 && o.kvOffset == 0 {
		return usageError("sim: --kv-replay-offset needs --kv-events-offset")
	}
	if o.kvOffset != 0 || o.kvReplay != 0 {
		if o.kvOffset < 0 || o.kvReplay < 0 || o.kvOffset == o.kvReplay {
			return usageError("sim: --kv-events-offset %d and --kv-replay-offset %d: give two different positive offsets", o.kvOffset, o.kvReplay)
		}
		if _, p, _ := net.SplitHostPort(addrs[0]); p == "0" {
			return usageError("sim: KV events are published on the simulator's port plus an offset; give --addr a port other than 0")
		}
	}
	cfg := o.sim
	if err := cfg.Validate(); err != nil {
		return &exitError{2, err}
	}
	log := slog.New(slog.NewJSONHandler(logOut, nil))
	var running []*sim.Running
	defer func() {
		for _, r := range running {
			_ = r.Close()
		}
	}()
	for _, a := range addrs {
		cfg.KVEvents = sim.KVEventsConfig{}
		if o.kvOffset != 0 {
			host, ps, _ := net.SplitHostPort(a)
			port, _ := strconv.Atoi(ps)
			if port+max(o.kvOffset, o.kvReplay) > 65535 {
				return usageError("sim: port %d plus the KV event offsets is past 65535; lower them", port)
			}
			cfg.KVEvents = sim.KVEventsConfig{Topic: o.kvTopic,
				Endpoint: "tcp://" + net.JoinHostPort(host, strconv.Itoa(port+o.kvOffset))}
			if o.kvReplay != 0 {
				cfg.KVEvents.Replay = "tcp://" + net.JoinHostPort(host, strconv.Itoa(port+o.kvReplay))
			}
		}
		r, err := sim.Start(ctx, a, cfg)
		if err != nil {
			return err
		}
		running = append(running, r)
		attrs := []any{"address", r.Addr, "model", cfg.Model,
			"num_gpu_blocks", cfg.NumGPUBlocks, "max_batch", cfg.MaxBatch, "time_scale", cfg.TimeScale}
		if kv := r.KVEvents; kv != nil {
			attrs = append(attrs, "kv_events", kv.Endpoint, "kv_replay", kv.ReplayEndpoint)
		}
		log.Info("simulator listening", attrs...)
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, r := range running {
		st := r.Server.Stats()
		if err := r.Shutdown(sctx); err != nil {
			log.Warn("simulator stopped early", "address", r.Addr, "err", err.Error())
		}
		log.Info("simulator stopped", "address", r.Addr, "requests", st.Requests,
			"prefix_query_tokens", st.PrefixQueryTokens, "prefix_hit_tokens", st.PrefixHitTokens)
	}
	running = nil
	return nil
}

// consecutive returns count addresses starting at addr with ports counting
// up; a port of 0 stays 0 (each simulator gets its own free port).
func consecutive(addr string, count int) ([]string, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("sim: --addr %q: %w; write host:port, e.g. 127.0.0.1:8000", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port+count-1 > 65535 {
		return nil, fmt.Errorf("sim: --addr %q: port must be 0..65535 and leave room for %d simulators", addr, count)
	}
	out := make([]string, count)
	for i := range out {
		p := port
		if port != 0 {
			p += i
		}
		out[i] = net.JoinHostPort(host, strconv.Itoa(p))
	}
	return out, nil
}
