// Command replay replays a Mooncake-format trace through kvgate in front of
// simulated vLLM servers, once per endpoint-picking scenario, and writes a
// Markdown table and an SVG chart of prefix-cache hit rate, time to first
// token, throughput and load spread. See README.md in this folder.
//
// It owns only flag parsing and file output; the replay itself is package
// loadgen. It must not reach beyond loopback.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kvgate/kvgate/internal/progress"
	"github.com/kvgate/kvgate/loadgen"
	"github.com/kvgate/kvgate/sim"
)

// usageErr is a bad command line: exit status 2, as flag's own errors.
type usageErr struct{ error }

func (e usageErr) Unwrap() error { return e.error }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp): // --help: the usage is printed
	case err != nil:
		fmt.Fprintln(os.Stderr, "replay:", err)
		code := 1
		if errors.As(err, new(usageErr)) {
			code = 2
		}
		os.Exit(code)
	}
}

type flags struct {
	workload     string
	seed         uint64
	oracle       bool
	trace        string
	requests     int
	timeScale    float64
	simTimeScale float64
	simulators   int
	blocks       int
	maxBatch     int
	prefill      time.Duration
	decode       time.Duration
	maxOutput    int
	replicas     int
	runs         int
	only         string
	out          string
	precise      bool
}

func parse(args []string) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.StringVar(&f.workload, "workload", "mooncake", "mooncake (the --trace file) or a generated workload: "+strings.Join(workloadNames(), ", ")+" (see README.md)")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of a generated workload")
	fs.BoolVar(&f.oracle, "oracle", true, "add the oracle row: no kvgate, each request to the simulator whose real cache holds its longest prefix (the hit-rate reference)")
	fs.StringVar(&f.trace, "trace", filepath.Join("..", "shared", "traces", "mooncake_conversation.jsonl"), "Mooncake JSONL trace (relative to the repository root)")
	fs.IntVar(&f.requests, "requests", 2000, "replay the first N requests of the trace (0 = all)")
	fs.Float64Var(&f.timeScale, "time-scale", 0.1, "multiply arrival times by this factor (0.1 = 10x faster)")
	fs.Float64Var(&f.simTimeScale, "sim-time-scale", 0.2, "simulator time scale; equal to --time-scale keeps the trace's load, larger adds load (the default 0.2 against 0.1 is twice the trace's load; 0 = same as --time-scale)")
	fs.IntVar(&f.simulators, "simulators", 8, "number of simulated model servers")
	fs.IntVar(&f.blocks, "num-gpu-blocks", 100000, "KV blocks of 16 tokens per simulator")
	fs.IntVar(&f.maxBatch, "max-batch", 2, "requests running at once per simulator")
	def := sim.DefaultConfig()
	fs.DurationVar(&f.prefill, "prefill-per-token", 100*time.Microsecond, "simulator cost of each uncached prompt token (model time)")
	fs.DurationVar(&f.decode, "decode-per-token", def.DecodePerToken, "simulator cost of each output token after the first (model time)")
	fs.IntVar(&f.maxOutput, "max-output", 16, "cap on max_tokens (the trace's output_length); 0 = no cap")
	fs.IntVar(&f.replicas, "replicas", 4, "kvgate instances in the multi-replica scenario (0 or 1 = skip it)")
	fs.IntVar(&f.runs, "runs", 1, "replay every scenario this many times, interleaved, and report medians with the range of hit rates (3 gives figures that noise moves less)")
	fs.StringVar(&f.only, "scenarios", "", "comma-separated scenario names to run, or ';'-separated when a name has a comma (default: all)")
	fs.BoolVar(&f.precise, "precise", false, "also run kvgate in precise mode (inference.kvEvents: the simulators publish vLLM KV events and serve /tokenize), once and with --replicas instances")
	fs.StringVar(&f.out, "out", filepath.Join("benchmarks", "replay"), "folder for results.md and results.svg ('' = do not write)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, err
		}
		return f, usageErr{err} // the flag package printed the usage
	}
	if fs.NArg() > 0 {
		return f, usageErr{fmt.Errorf("unexpected argument %q; every option is a flag (see --help)", fs.Arg(0))}
	}
	if f.workload != "mooncake" {
		w, err := loadgen.LookupWorkload(f.workload)
		if err != nil {
			return f, err
		}
		// A generated workload's timestamps are model time: replay them at
		// the simulators' speed, against the cache size it is sized for,
		// unless told otherwise.
		set := map[string]bool{}
		fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
		if !set["time-scale"] {
			f.timeScale = 0.2
		}
		if !set["sim-time-scale"] {
			f.simTimeScale = f.timeScale
		}
		if !set["num-gpu-blocks"] {
			f.blocks = w.Blocks
		}
		if !set["out"] {
			f.out = filepath.Join("benchmarks", "replay", w.Name)
		}
	}
	if f.simTimeScale == 0 {
		f.simTimeScale = f.timeScale
	}
	if f.runs < 1 {
		return f, fmt.Errorf("--runs %d: give 1 or more", f.runs)
	}
	return f, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parse(args)
	if err != nil {
		return err
	}
	reqs, err := workload(f)
	if err != nil {
		return err
	}
	cfg := sim.DefaultConfig()
	cfg.NumGPUBlocks = f.blocks
	cfg.MaxBatch = f.maxBatch
	cfg.PrefillPerToken = f.prefill
	cfg.DecodePerToken = f.decode
	cfg.TimeScale = f.simTimeScale
	opts := loadgen.Options{
		Workload:   reqs,
		TimeScale:  f.timeScale,
		Simulators: f.simulators,
		Sim:        cfg,
		Client:     loadgen.Client{Model: cfg.Model, MaxOutput: f.maxOutput},
	}
	all := loadgen.StandardScenarios(f.replicas)
	if f.precise {
		all = append(all, loadgen.PreciseScenarios(f.replicas)...)
	}
	if f.oracle {
		all = append(all, loadgen.OracleScenario())
	}
	scenarios := selectScenarios(all, f.only)
	if len(scenarios) == 0 {
		return fmt.Errorf("--scenarios %q matches none of the scenario names", f.only)
	}
	best := loadgen.IdealOf(reqs, cfg.PrefillBase, cfg.PrefillPerToken)
	sticky := loadgen.StickyHitRate(reqs, f.simulators, f.blocks*sim.BlockTokens/loadgen.TraceBlockTokens, loadgen.DefaultHotShare)
	env := environment(args, f, reqs) + idealLine(best) + stickyLine(sticky)
	fmt.Fprint(stdout, env)
	reports, err := replayAll(ctx, opts, scenarios, f.runs, stderr)
	if err != nil {
		return err
	}
	var table bytes.Buffer
	if err := loadgen.WriteMarkdown(&table, reports); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, table.String())
	if f.out == "" {
		return nil
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return err
	}
	return writeResults(f.out, env, table.String(), reports, scenarios)
}

// replayAll replays every scenario runs times, all scenarios once before
// any twice, so that a drift of the machine touches every scenario alike,
// and returns one MedianReport per scenario.
func replayAll(ctx context.Context, opts loadgen.Options, scenarios []loadgen.Scenario, runs int, stderr io.Writer) ([]loadgen.Report, error) {
	all := make([][]loadgen.Report, len(scenarios))
	for run := 1; run <= runs; run++ {
		for i, sc := range scenarios {
			name := sc.Name
			if runs > 1 {
				name = fmt.Sprintf("%s #%d", sc.Name, run)
			}
			bar := progress.New(stderr, name) // nil (silent) when stderr is not a terminal
			opts.Progress = bar.Set
			r, err := loadgen.Run(ctx, opts, sc)
			bar.End()
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(stderr, "replay: %-36s hit %5.1f%%  TTFT p50 %6.0f ms  p99 %6.0f ms  failed %d  (%.1fs)\n",
				name, 100*r.HitRate, float64(r.TTFTP50)/1e6, float64(r.TTFTP99)/1e6, r.Failed, r.Wall.Seconds())
			if r.FirstError != "" {
				fmt.Fprintf(stderr, "replay:   first error: %s\n", r.FirstError)
			}
			all[i] = append(all[i], r)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
	}
	reports := make([]loadgen.Report, len(all))
	for i, rs := range all {
		reports[i] = loadgen.MedianReport(rs)
	}
	return reports, nil
}

func selectScenarios(all []loadgen.Scenario, only string) []loadgen.Scenario {
	if only == "" {
		return all
	}
	sep := "," // names with a comma in them are selected with ';' between names
	if strings.Contains(only, ";") {
		sep = ";"
	}
	want := strings.Split(only, sep)
	return slices.DeleteFunc(all, func(s loadgen.Scenario) bool {
		return !slices.ContainsFunc(want, func(w string) bool { return strings.TrimSpace(w) == s.Name })
	})
}

func environment(args []string, f flags, reqs []loadgen.Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "command:   go run ./benchmarks/replay %s\n", strings.Join(args, " "))
	fmt.Fprintf(&b, "go:        %s %s/%s, NumCPU %d, GOMAXPROCS %d\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0))
	fmt.Fprintf(&b, "revision:  %s\n", revision())
	fmt.Fprintf(&b, "date:      %s\n", time.Now().UTC().Format(time.RFC3339))
	span := time.Duration(0)
	if len(reqs) > 0 {
		span = time.Duration(reqs[len(reqs)-1].Timestamp-reqs[0].Timestamp) * time.Millisecond
	}
	if f.workload == "mooncake" {
		fmt.Fprintf(&b, "trace:     %s, first %d requests spanning %s, replayed at time scale %g\n", filepath.Base(f.trace), len(reqs), span, f.timeScale)
	} else {
		w, _ := loadgen.LookupWorkload(f.workload)
		fmt.Fprintf(&b, "workload:  %s (seed %d): %s; %d requests spanning %s, replayed at time scale %g\n", w.Name, f.seed, w.Doc, len(reqs), span, f.timeScale)
	}
	fmt.Fprintf(&b, "simulators: %d × (num-gpu-blocks %d = %d tokens, max-batch %d, prefill %v/token, decode %v/token, time scale %g); max-output %d\n",
		f.simulators, f.blocks, f.blocks*sim.BlockTokens, f.maxBatch, f.prefill, f.decode, f.simTimeScale, f.maxOutput)
	return b.String()
}

// idealLine reports what no picker can beat on this slice, so that the
// table's figures can be read against it.
func idealLine(id loadgen.Ideal) string {
	return fmt.Sprintf("ideal:     one server, unbounded cache, no queue: hit rate %.1f%%, TTFT p50 %.0f ms, p99 %.0f ms (prefill of the uncached tokens alone)\n",
		100*id.HitRate, float64(id.TTFTP50)/1e6, float64(id.TTFTP99)/1e6)
}

// stickyLine reports what caches of this size allow a router that keeps
// every conversation on one server (loadgen.StickyHitRate).
func stickyLine(hit float64) string {
	return fmt.Sprintf("sticky:    conversations never move, new ones to the least-written cache, no queue: hit rate %.1f%% (what these cache sizes keep of the ideal)\n", 100*hit)
}

func revision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "unknown", ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = " (modified)"
			}
		}
	}
	return rev + dirty
}

func writeResults(dir, env, table string, reports []loadgen.Report, scenarios []loadgen.Scenario) error {
	var b strings.Builder
	b.WriteString("# Trace replay results\n\n")
	b.WriteString("Written by `go run ./benchmarks/replay`; see README.md for what the columns mean.\n\n```\n")
	b.WriteString(env)
	b.WriteString("```\n\n")
	b.WriteString(table)
	b.WriteString("\nTTFT and output tokens/s are in model time (wall time divided by the simulator time scale).\n\n")
	b.WriteString("| scenario | what it is |\n|---|---|\n")
	for _, sc := range scenarios {
		fmt.Fprintf(&b, "| %s | %s |\n", sc.Name, sc.Note)
	}
	b.WriteString("\n![hit rate and TTFT p99](results.svg)\n")
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	var svg bytes.Buffer
	if err := loadgen.WriteSVG(&svg, reports, "kvgate trace replay: hit rate and TTFT p99 per picker"); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.svg"), svg.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	svg.Reset()
	if err := loadgen.WriteLatencySVG(&svg, reports, "kvgate replay: hit rate, TTFT p50 and p99 per picker"); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "latency.svg"), svg.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	return nil
}

// workload returns the requests of the trace or of the generated workload
// f names.
func workload(f flags) ([]loadgen.Request, error) {
	if f.workload == "mooncake" {
		return loadgen.LoadTrace(f.trace, f.requests)
	}
	w, err := loadgen.LookupWorkload(f.workload)
	if err != nil {
		return nil, err
	}
	reqs := w.Generate(f.seed)
	if f.requests > 0 && f.requests < len(reqs) {
		reqs = reqs[:f.requests]
	}
	return reqs, nil
}

func workloadNames() []string {
	var out []string
	for _, w := range loadgen.Workloads() {
		out = append(out, w.Name)
	}
	return out
}
