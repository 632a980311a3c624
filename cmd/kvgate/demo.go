package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"time"

	"github.com/kvgate/kvgate/admin"
	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/internal/progress"
	"github.com/kvgate/kvgate/loadgen"
	"github.com/kvgate/kvgate/proxy"
	"github.com/kvgate/kvgate/sim"
)

// demoFlags are the knobs of `kvgate demo`; the defaults finish in well under
// a minute on two cores.
type demoFlags struct {
	trace         string
	requests      int
	synthetic     bool
	conversations int
	turns         int
	simulators    int
	wall          time.Duration
	admin         string
	keep          bool
}

func (f *demoFlags) flagSet() *flag.FlagSet {
	fs := newFlagSet("demo")
	fs.StringVar(&f.trace, "trace", "", "replay the start of the Mooncake trace `FILE` instead of the built-in conversations (a short slice of a real trace shares little, so the difference is smaller)")
	fs.IntVar(&f.requests, "requests", 300, "`N` requests taken from the start of the trace")
	fs.BoolVar(&f.synthetic, "synthetic", false, "use the built-in conversations even when --trace is readable")
	fs.IntVar(&f.conversations, "conversations", 24, "built-in workload: `N` conversations sharing one system prompt")
	fs.IntVar(&f.turns, "turns", 5, "built-in workload: `N` turns per conversation")
	fs.IntVar(&f.simulators, "simulators", 4, "`N` simulated model servers")
	fs.DurationVar(&f.wall, "duration", 10*time.Second, "squeeze the arrivals of each run into `DURATION` of wall-clock time")
	fs.StringVar(&f.admin, "admin", config.DefaultAdminAddress, "serve the status page and /debug endpoints of the running kvgate on `HOST:PORT` (\"off\": none)")
	fs.BoolVar(&f.keep, "keep", false, "after the last run, keep kvgate, the simulators and the status page up until interrupted (Ctrl-C)")
	return fs
}

var cmdDemo = &command{
	name:     "demo",
	synopsis: "[flags]",
	summary:  "replay a short workload through kvgate and 4 simulators: round-robin, prefix-affinity and the default, latency",
	about: `Start simulated vLLM servers and kvgate in process (nothing to set up, no ports to choose),
replay a workload three times, with round-robin, with prefix-affinity (the default before
picking v2) and with latency (the default: prefix affinity weighed against each endpoint's
learned time to first token), and print the prefix-cache hit rate and time to first token
side by side. While it runs, the
status page of the kvgate under test is at http://127.0.0.1:9901/ (--admin): which endpoint
each conversation went to and why; kvgate inspect reads the same data. Progress is drawn
only when stderr is a terminal.`,
	maxArgs: 0,
	groups: []flagGroup{
		{"Workload", []string{"trace", "requests", "synthetic", "conversations", "turns"}},
		{"Replay", []string{"simulators", "duration"}},
		{"Status page", []string{"admin", "keep"}},
	},
	flags: func() *flag.FlagSet { return new(demoFlags).flagSet() },
}

// runDemo replays a short workload through kvgate and simulators three
// times, with round-robin, prefix-affinity and the default picker (latency),
// and prints them side by side.
func runDemo(ctx context.Context, args []string, out, progressOut io.Writer) error {
	var f demoFlags
	if _, ok, err := cmdDemo.parse(f.flagSet(), args, out); !ok {
		return err
	}
	if f.requests < 1 || f.conversations < 1 || f.turns < 1 || f.simulators < 1 || f.wall <= 0 {
		return usageError("demo: --requests, --conversations, --turns, --simulators and --duration must be positive; %s", cmdDemo.seeHelp())
	}
	work, source, blocks := demoWorkload(f)
	span := time.Duration(work[len(work)-1].Timestamp-work[0].Timestamp) * time.Millisecond
	scale := 1.0
	if span > 0 {
		scale = min(1, f.wall.Seconds()/span.Seconds())
	}
	cfg := sim.DefaultConfig()
	cfg.NumGPUBlocks = blocks
	cfg.TimeScale = scale
	fmt.Fprintf(out, "kvgate demo: %d requests (%s) through kvgate to %d simulated vLLM servers\n", len(work), source, f.simulators)
	fmt.Fprintf(out, "  each server: %d KV blocks of 16 tokens; time runs %.0fx faster than the trace (TTFT shown in model time)\n\n", blocks, 1/scale)
	opts := loadgen.Options{
		Workload:   work,
		TimeScale:  scale,
		Simulators: f.simulators,
		Sim:        cfg,
		Client:     loadgen.Client{Model: cfg.Model, MaxOutput: 32},
	}
	scenarios := []loadgen.Scenario{
		{Name: "round-robin", Inference: config.Inference{Picker: "round-robin"}, Balancer: "round-robin"},
		{Name: "prefix-affinity", Inference: config.Inference{Picker: "prefix-affinity"}},
		{Name: "latency (default)", Inference: config.Inference{Picker: config.DefaultPicker}},
	}
	if f.admin != "off" {
		if ln, err := net.Listen("tcp", f.admin); err != nil {
			fmt.Fprintf(out, "  (no status page: %v; pass --admin HOST:PORT to choose another address)\n\n", err)
			f.admin = ""
		} else {
			f.admin = ln.Addr().String() // the port, when --admin asked for any (:0)
			_ = ln.Close()
			fmt.Fprintf(out, "  status page: http://%s/   (kvgate inspect picks --admin %s)\n\n", f.admin, f.admin)
			opts.Admin = f.admin
			opts.Setup = func(p *proxy.Proxy) { p.SetAdminUI(admin.Handler(p, buildVersion())) }
		}
	} else {
		f.admin = ""
	}
	var reports []loadgen.Report
	printed := false // --keep prints the table before it holds
	for i, sc := range scenarios {
		opts.Hold = nil
		if f.keep && i == len(scenarios)-1 {
			opts.Hold = func(ctx context.Context, r loadgen.Report) {
				printSideBySide(out, append(reports, r))
				printed = true
				fmt.Fprintf(out, "\nkvgate demo: the %s run is over; kvgate and the simulators stay up", sc.Name)
				if f.admin != "" {
					fmt.Fprintf(out, " (status page http://%s/)", f.admin)
				}
				fmt.Fprintln(out, " until interrupted (Ctrl-C)")
				<-ctx.Done()
			}
		}
		bar := progress.New(progressOut, sc.Name) // nil (silent) when not a terminal
		opts.Progress = bar.Set
		r, err := loadgen.Run(ctx, opts, sc)
		bar.End()
		if err != nil {
			return err
		}
		reports = append(reports, r)
		if ctx.Err() != nil && !f.keep {
			return ctx.Err()
		}
	}
	if !printed {
		printSideBySide(out, reports)
	}
	for _, r := range reports {
		if r.Failed > 0 {
			return fmt.Errorf("demo: %d of %d requests failed with %s; first error: %s", r.Failed, r.Requests, r.Scenario, r.FirstError)
		}
	}
	return nil
}

// demoWorkload returns a slice of the trace when it is readable, else the
// built-in workload, with a per-server cache size that holds only part of
// the workload's prefixes.
func demoWorkload(f demoFlags) ([]loadgen.Request, string, int) {
	if !f.synthetic && f.trace != "" {
		if reqs, err := loadgen.LoadTrace(f.trace, f.requests); err == nil && len(reqs) > 0 {
			return reqs, "first requests of " + filepath.Base(f.trace), 32768
		}
	}
	work := loadgen.Synthetic(loadgen.SyntheticSpec{
		Conversations: f.conversations,
		Turns:         f.turns,
		SystemBlocks:  4,
		TurnBlocks:    2,
		Stagger:       400 * time.Millisecond,
		Think:         3 * time.Second,
		Output:        32,
	})
	// Largest prompt in 16-token blocks, with room for the answer and for
	// a few requests at once, but far less than all conversations together.
	largest := (4+2*f.turns)*loadgen.TraceBlockTokens/sim.BlockTokens + 8
	return work, "built-in conversations sharing a system prompt", max(4*largest, 2048)
}

func printSideBySide(w io.Writer, rs []loadgen.Report) {
	row := func(label string, cell func(loadgen.Report) string) {
		fmt.Fprintf(w, "  %-18s", label)
		for _, r := range rs {
			fmt.Fprintf(w, " %18s", cell(r))
		}
		fmt.Fprintln(w)
	}
	row("", func(r loadgen.Report) string { return r.Scenario })
	row("prefix hit rate", func(r loadgen.Report) string { return fmt.Sprintf("%.1f%%", 100*r.HitRate) })
	row("TTFT p50", func(r loadgen.Report) string { return fmt.Sprintf("%.0f ms", ms(r.TTFTP50)) })
	row("TTFT p99", func(r loadgen.Report) string { return fmt.Sprintf("%.0f ms", ms(r.TTFTP99)) })
	row("output tokens/s", func(r loadgen.Report) string { return fmt.Sprintf("%.0f", r.OutputTokensPerSec) })
	row("max/mean load", func(r loadgen.Report) string { return fmt.Sprintf("%.2f", r.MaxMeanShare) })
	row("failed", func(r loadgen.Report) string { return fmt.Sprintf("%d/%d", r.Failed, r.Requests) })
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
