package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/kvgate/kvgate/sim"
)

// runSim serves count vLLM-compatible simulators on consecutive ports from
// --addr until ctx ends, logging JSON lines to logOut.
func runSim(ctx context.Context, args []string, logOut io.Writer) error {
	def := sim.DefaultConfig()
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8000", "listen address of the first simulator (port 0 picks free ports)")
	count := fs.Int("count", 1, "number of simulators, on consecutive ports")
	model := fs.String("model", def.Model, "served model name")
	blocks := fs.Int("num-gpu-blocks", def.NumGPUBlocks, "KV cache size in blocks of 16 tokens, per simulator")
	batch := fs.Int("max-batch", def.MaxBatch, "requests running at once, per simulator")
	scale := fs.Float64("time-scale", 1, "multiply every simulated duration (0.1 = ten times faster)")
	if err := fs.Parse(args); err != nil {
		return &exitError{2, err}
	}
	if *count < 1 {
		return &exitError{2, errors.New("sim: --count must be 1 or more")}
	}
	addrs, err := consecutive(*addr, *count)
	if err != nil {
		return &exitError{2, err}
	}
	cfg := def
	cfg.Model, cfg.NumGPUBlocks, cfg.MaxBatch, cfg.TimeScale = *model, *blocks, *batch, *scale
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
		r, err := sim.Start(ctx, a, cfg)
		if err != nil {
			return err
		}
		running = append(running, r)
		log.Info("simulator listening", "address", r.Addr, "model", cfg.Model,
			"num_gpu_blocks", cfg.NumGPUBlocks, "max_batch", cfg.MaxBatch, "time_scale", cfg.TimeScale)
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
