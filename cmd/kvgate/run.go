package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kvgate/kvgate/admin"
	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/config/adapt"
	"github.com/kvgate/kvgate/proxy"
)

// configSource is where run and validate read their configuration from and
// what the command line said about it. Its load is the one function that
// start-up and every reload (file change, SIGHUP, POST /reload) call.
type configSource struct {
	path       string        // "" is the embedded quickstart config
	adapt      adapt.Options // for Kubernetes manifests
	adaptFlags []string      // the manifest flags given, as --name
	admin      string        // run --admin; "" keeps the config's admin.address
}

// register defines --config and the manifest flags on fs.
func (s *configSource) register(fs *flag.FlagSet) {
	fs.StringVar(&s.path, "config", "", "read the config from `FILE`, a kvgate config or Kubernetes manifests (the same as the FILE argument)")
	adapt.RegisterFlags(fs, &s.adapt)
}

// manifestFlags are the flags that only apply to Kubernetes manifests,
// those of `kvgate adapt` (config/adapt.RegisterFlags), in the order help
// lists them.
var manifestFlags = func() []string {
	fs := newFlagSet("")
	adapt.RegisterFlags(fs, new(adapt.Options))
	names := []string{"endpoints", "listen", "bind", "cert", "labels"}
	names = slices.DeleteFunc(names, func(n string) bool { return fs.Lookup(n) == nil })
	fs.VisitAll(func(f *flag.Flag) {
		if !slices.Contains(names, f.Name) {
			names = append(names, f.Name)
		}
	})
	return names
}()

// resolve takes the positional FILE of cmd (at most one, the same file as
// --config when both are given) and notes which manifest flags were given.
// With kubernetes (run --kubernetes) the manifests come from the cluster,
// so the manifest flags need no FILE.
func (s *configSource) resolve(cmd *command, fs *flag.FlagSet, pos []string, kubernetes bool) error {
	if len(pos) == 1 {
		if s.path != "" && filepath.Clean(s.path) != filepath.Clean(pos[0]) {
			return usageError("%s: two config files, --config %s and %s: give one, as kvgate %s FILE; %s", cmd.name, s.path, pos[0], cmd.name, cmd.seeHelp())
		}
		s.path = pos[0]
	}
	fs.Visit(func(f *flag.Flag) {
		if slices.Contains(manifestFlags, f.Name) {
			s.adaptFlags = append(s.adaptFlags, "--"+f.Name)
		}
	})
	if len(s.adaptFlags) > 0 && s.path == "" && !kubernetes {
		return usageError("%s: %s %s for Kubernetes manifests, but no FILE was given: write kvgate %s FILE %s ...; %s",
			cmd.name, strings.Join(s.adaptFlags, ", "), isAre(s.adaptFlags), cmd.name, s.adaptFlags[0], cmd.seeHelp())
	}
	return nil
}

func isAre(s []string) string {
	if len(s) == 1 {
		return "is"
	}
	return "are"
}

// load reads the configuration: a kvgate config or Kubernetes manifests
// adapted with the manifest flags, or the embedded quickstart config when
// there is no file; then --admin, when given, replaces admin.address. The
// result is defaulted and validated. Manifest warnings go to warn. A
// manifest flag given for a file that is a kvgate config is refused (exit
// status 2): the file says the same itself.
func (s *configSource) load(warn func(adapt.Warning)) (*config.Config, error) {
	var c *config.Config
	if s.path == "" {
		var err error
		if c, err = config.Parse(config.DefaultYAML, proxy.EmbeddedSource); err != nil {
			return nil, err
		}
	} else {
		if len(s.adaptFlags) > 0 {
			if data, err := os.ReadFile(s.path); err == nil && !adapt.IsManifest(data) {
				return nil, usageError("%s is a kvgate config, not Kubernetes manifests: %s %s for manifests only; write the same in the file (pools[].endpoints, listeners[].address, listeners[].tls) and drop the flag",
					s.path, strings.Join(s.adaptFlags, ", "), isAre(s.adaptFlags))
			}
		}
		var warns []adapt.Warning
		var err error
		c, warns, err = adapt.LoadAny(s.path, s.adapt)
		for _, w := range warns {
			warn(w)
		}
		if err != nil {
			return nil, err
		}
	}
	if s.admin != "" && s.admin != c.Admin.Address {
		c.Admin.Address = s.admin
		if err := config.Validate(c); err != nil {
			return nil, fmt.Errorf("with --admin %s: %w", s.admin, err)
		}
	}
	return c, nil
}

// serveOpts are the flags of `kvgate run`.
type serveOpts struct {
	src      configSource
	logLevel string
	kube     kubeOpts // kube.go
}

func (o *serveOpts) flagSet() *flag.FlagSet {
	fs := newFlagSet("run")
	o.src.register(fs)
	fs.StringVar(&o.src.admin, "admin", "", "serve /livez, /readyz, /metrics and POST /reload on `HOST:PORT` instead of the config's admin.address (\"off\": no admin listener)")
	fs.StringVar(&o.logLevel, "log-level", "info", "`LEVEL` of the JSON log on stderr: debug, info, warn or error")
	o.kube.register(fs)
	return fs
}

const manifestGroupTitle = "Kubernetes manifests (when FILE holds Gateway, HTTPRoute, InferencePool, AuthorizationPolicy, Service objects)"

var cmdRun = &command{
	name:     "run",
	synopsis: "[FILE] [flags]",
	summary:  "serve in the foreground (FILE: a kvgate config or Kubernetes manifests; default: the embedded quickstart)",
	about: `Serve until SIGINT or SIGTERM, then drain. FILE (or --config FILE) is a kvgate config or
Kubernetes manifests; without one, kvgate serves its embedded quickstart config
(127.0.0.1:8080 -> 127.0.0.1:8000, admin on 127.0.0.1:9901, as examples/quickstart.yaml).

The file is watched and read again when it changes, on SIGHUP and on POST /reload to the
admin listener, the same way as at start (manifests with the flags below); a file with an
error is refused and the running config keeps serving.

With --kubernetes, kvgate serves the Gateways of the cluster whose GatewayClass has
--controller-name, with their HTTPRoutes, InferencePools, AuthorizationPolicies and the
ready endpoints of their Services and pods, and follows every change. The manifest flags
below apply to what it reads; FILE, if given, is a kvgate config whose admin, identity,
limits, paths, accessLog, tracing and drainTimeout apply (its listeners, routes, pools and
authorization are the cluster's). /readyz answers 503 until the first configuration. The
replica holding the Lease (--leader-elect) writes Gateway API status on what it serves.`,
	args:    "config FILE",
	maxArgs: 1,
	groups: []flagGroup{
		{"Config", []string{"config"}},
		{manifestGroupTitle + ", or the cluster's objects with --kubernetes", manifestFlags},
		{"Kubernetes", kubeFlags},
		{"Listening", []string{"admin"}},
		{"Logging", []string{"log-level"}},
	},
	flags: func() *flag.FlagSet { return new(serveOpts).flagSet() },
}

func runServe(ctx context.Context, args []string, stdout, logOut io.Writer) error {
	var o serveOpts
	fs := o.flagSet()
	pos, ok, err := cmdRun.parse(fs, args, stdout)
	if !ok {
		return err
	}
	if err := o.src.resolve(cmdRun, fs, pos, o.kube.enabled); err != nil {
		return err
	}
	if err := o.kube.check(fs); err != nil {
		return err
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(o.logLevel)); err != nil {
		return usageError("run: --log-level %q: use debug, info, warn or error; %s", o.logLevel, cmdRun.seeHelp())
	}
	if a := o.src.admin; a != "" && a != "off" && !isListenAddr(a) {
		return usageError("run: --admin %q: write HOST:PORT, like 127.0.0.1:9901 (or 127.0.0.1:0 for a free port), or off; %s", a, cmdRun.seeHelp())
	}
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: lv}))
	if o.kube.enabled {
		return runKube(ctx, &o, log)
	}
	load := func() (*config.Config, error) {
		return o.src.load(func(w adapt.Warning) { log.Warn("manifest not fully honoured", "warning", w.String()) })
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	p, err := proxy.New(cfg, log)
	if err != nil {
		return err
	}
	p.SetLoader(load)
	p.SetAdminUI(admin.Handler(p, buildVersion()))
	if err := p.Start(); err != nil {
		return err
	}
	log.Info("kvgate started", "version", buildVersion(), "config", cfg.Source)
	if o.src.path != "" {
		wctx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		go func() {
			if err := config.Watch(wctx, o.src.path, 300*time.Millisecond, func() { _ = p.ReloadSource() }); err != nil {
				log.Warn("config file watch is off; reload with SIGHUP or POST /reload", "err", err.Error())
			}
		}()
	}
	serveUntilDone(ctx, p, cfg, log)
	return nil
}

// serveUntilDone reloads p on SIGHUP until ctx ends, then drains it.
func serveUntilDone(ctx context.Context, p *proxy.Proxy, cfg *config.Config, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			_ = p.ReloadSource() // logs and counts the outcome
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
}

// isListenAddr reports whether a is HOST:PORT with a port kvgate can listen
// on (config validation says more once the address is in a config).
func isListenAddr(a string) bool {
	_, port, err := net.SplitHostPort(a)
	n, perr := strconv.Atoi(port)
	return err == nil && perr == nil && n >= 0 && n <= 65535
}

var cmdValidate = &command{
	name:     "validate",
	synopsis: "FILE [flags]",
	summary:  "check a config or manifests; print every error with file:line, key and fix",
	about: `Read FILE (or --config FILE) as kvgate run would, print every problem with file:line:col,
the key path and the fix, and exit 1 if there is one. Kubernetes manifests are adapted with
the flags below first; their warnings are printed too.`,
	args:    "config FILE",
	minArgs: 0, // FILE or --config: checked after parsing
	maxArgs: 1,
	groups: []flagGroup{
		{"Config", []string{"config"}},
		{manifestGroupTitle, manifestFlags},
	},
	flags: func() *flag.FlagSet { return new(configSource).flagSet("validate") },
}

func (s *configSource) flagSet(name string) *flag.FlagSet {
	fs := newFlagSet(name)
	s.register(fs)
	return fs
}

func runValidate(args []string, out io.Writer) error {
	var src configSource
	fs := src.flagSet("validate")
	pos, ok, err := cmdValidate.parse(fs, args, out)
	if !ok {
		return err
	}
	if err := src.resolve(cmdValidate, fs, pos, false); err != nil {
		return err
	}
	if src.path == "" {
		return usageError("validate: no config FILE given: write kvgate validate FILE; %s", cmdValidate.seeHelp())
	}
	_, err = src.load(func(w adapt.Warning) { fmt.Fprintln(out, "warning:", w) })
	if exitCode(err) == 2 {
		return err
	}
	if err != nil {
		fmt.Fprintln(out, err)
		return &exitError{1, fmt.Errorf("%s is not valid", src.path)}
	}
	fmt.Fprintf(out, "%s is valid\n", src.path)
	return nil
}
