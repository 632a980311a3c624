package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/proxy"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries a process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

const usage = `kvgate: an inference-aware L7 reverse proxy.

Usage:
  kvgate run [--config FILE]       serve in the foreground (default: the embedded quickstart config)
  kvgate validate --config FILE    check a config; print every error with file:line, key and fix
  kvgate adapt [flags] FILE...     turn Gateway API / Inference Extension / Istio manifests into a config
                                   (run and validate also take manifests as --config, with the same flags)
  kvgate sim [--addr A --count N]  serve simulated vLLM model servers (no GPU) on consecutive ports
  kvgate demo                      replay a short workload through kvgate and 4 simulators, round-robin vs prefix-affinity
  kvgate version                   print the version
`

// run dispatches a subcommand. It returns instead of exiting so tests can call it.
func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return &exitError{2, errors.New("no command given")}
	}
	switch args[0] {
	case "run":
		return runServe(ctx, args[1:], os.Stderr)
	case "validate":
		return runValidate(args[1:], os.Stdout)
	case "adapt":
		return runAdapt(args[1:], os.Stdout, os.Stderr)
	case "sim":
		return runSim(ctx, args[1:], os.Stderr)
	case "demo":
		return runDemo(ctx, args[1:], os.Stdout, os.Stderr)
	case "version", "--version", "-v":
		fmt.Println("kvgate", buildVersion())
		return nil
	case "help", "--help", "-h":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return &exitError{2, fmt.Errorf("unknown command %q", args[0])}
}

func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return version
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Parse(config.DefaultYAML, proxy.EmbeddedSource)
	}
	return loadAny(path, os.Stderr)
}

func runServe(ctx context.Context, args []string, logOut io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	path := fs.String("config", "", "config file (default: embedded quickstart)")
	level := fs.String("log-level", "info", "debug | info | warn | error")
	addManifestFlags(fs)
	if err := fs.Parse(args); err != nil {
		return &exitError{2, err}
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return &exitError{2, fmt.Errorf("--log-level: %w", err)}
	}
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: lv}))
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	p, err := proxy.New(cfg, log)
	if err != nil {
		return err
	}
	if err := p.Start(); err != nil {
		return err
	}
	log.Info("kvgate started", "version", buildVersion(), "config", cfg.Source)
	if *path != "" {
		wctx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		go func() {
			if err := config.Watch(wctx, *path, 300*time.Millisecond, func() { reload(p, *path, log) }); err != nil {
				log.Warn("config file watch is off; reload with SIGHUP or POST /reload", "err", err.Error())
			}
		}()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			reload(p, *path, log)
			continue
		case <-ctx.Done():
		}
		break
	}
	dctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout.D())
	defer cancel()
	if err := p.Shutdown(dctx); err != nil {
		log.Warn("drain ended early", "err", err)
	}
	log.Info("kvgate stopped")
	return nil
}

// reload re-reads the config; on any error the running config stays.
func reload(p *proxy.Proxy, path string, log *slog.Logger) {
	if path != "" {
		_ = p.ReloadFile(path) // logs and counts the outcome
		return
	}
	cfg, err := loadConfig(path)
	if err == nil {
		err = p.Reload(cfg)
	}
	if err != nil {
		log.Error("reload refused; keeping the running config", "err", err.Error())
		return
	}
	log.Info("config reloaded", "config", cfg.Source)
}

func runValidate(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	path := fs.String("config", "", "config file to check")
	addManifestFlags(fs)
	if err := fs.Parse(args); err != nil {
		return &exitError{2, err}
	}
	if *path == "" && fs.NArg() == 1 {
		*path = fs.Arg(0)
	}
	if *path == "" {
		return &exitError{2, errors.New("validate needs --config FILE")}
	}
	if _, err := loadAny(*path, out); err != nil {
		fmt.Fprintln(out, err)
		return &exitError{1, fmt.Errorf("%s is not valid", *path)}
	}
	fmt.Fprintf(out, "%s is valid\n", *path)
	return nil
}
