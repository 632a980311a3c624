// Command kvgate is an inference-aware L7 reverse proxy: one binary that
// terminates TLS, authorizes callers, routes with Gateway API semantics and
// picks model-server endpoints by KV-cache affinity.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/kvgate/kvgate/internal/buildinfo"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/kvgate/kvgate/config"
)

func main() {
	os.Exit(mainCode(os.Args[1:], os.Stderr))
}

// mainCode runs the command in args until it ends or SIGINT or SIGTERM
// cancels it, and returns the process's exit code. main is only this, so
// tests can signal the process and check the code it would exit with.
func mainCode(args []string, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, args, os.Stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "kvgate:", err)
		return exitCode(err)
	}
	return 0
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries a process exit code: 2 for a command line that was not
// understood, 1 (any other error) for a command that failed, 3 for
// `adapt --strict` with warnings.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// commands lists the subcommands in the order `kvgate help` shows them.
var commands = []*command{cmdRun, cmdValidate, cmdAdapt, cmdInspect, cmdSim, cmdDemo, cmdVersion, cmdHelp}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// printUsage writes the top-level help: every subcommand and its summary.
func printUsage(w io.Writer) {
	fmt.Fprint(w, "kvgate: an inference-aware L7 reverse proxy.\n\nUsage:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  kvgate %s\t%s\n", c.usageLine(), c.summary)
	}
	_ = tw.Flush()
	fmt.Fprint(w, "\n\"kvgate help COMMAND\" or \"kvgate COMMAND --help\" shows what a command does and its flags.\n")
}

// run dispatches a subcommand. It returns instead of exiting so tests can
// call it; help goes to stdout, logs and diagnostics to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		printUsage(stderr)
		return usageError("no command given: write kvgate COMMAND, e.g. kvgate run; see \"kvgate help\"")
	}
	name, rest := args[0], args[1:]
	switch name {
	case "run":
		return runServe(ctx, rest, stdout, stderr)
	case "validate":
		return runValidate(rest, stdout)
	case "adapt":
		return runAdapt(rest, stdout, stderr)
	case "inspect":
		return runInspect(ctx, rest, stdout)
	case "sim":
		return runSim(ctx, rest, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "version", "--version", "-v":
		return runVersion(rest, stdout)
	case "help", "--help", "-h", "-help":
		return runHelp(rest, stdout)
	}
	if strings.HasPrefix(name, "-") {
		return usageError("unknown flag %s before the command: flags go after it, as in kvgate run %s; see \"kvgate help\"", name, name)
	}
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	if s := config.Suggest(name, names); s != "" {
		return usageError("unknown command %q: did you mean %q? see \"kvgate help\"", name, s)
	}
	return usageError("unknown command %q; see \"kvgate help\" for the commands", name)
}

var cmdVersion = &command{
	name:     "version",
	summary:  "print the version",
	about:    "Print the version kvgate was built as (a release tag, or dev-COMMIT for a build from a checkout).",
	maxArgs:  0,
	flags:    func() *flag.FlagSet { return newFlagSet("version") },
	synopsis: "",
}

func runVersion(args []string, stdout io.Writer) error {
	if _, ok, err := cmdVersion.parse(cmdVersion.flags(), args, stdout); !ok {
		return err
	}
	fmt.Fprintln(stdout, "kvgate", buildVersion())
	return nil
}

var cmdHelp = &command{
	name:     "help",
	synopsis: "[COMMAND]",
	summary:  "show what a command does and its flags",
	about:    "Without a COMMAND, list the commands; with one, print its help (the same as kvgate COMMAND --help).",
	args:     "COMMAND",
	maxArgs:  1,
	flags:    func() *flag.FlagSet { return newFlagSet("help") },
}

func runHelp(args []string, stdout io.Writer) error {
	pos, ok, err := cmdHelp.parse(cmdHelp.flags(), args, stdout)
	if !ok {
		return err
	}
	if len(pos) == 0 {
		printUsage(stdout)
		return nil
	}
	c := lookup(pos[0])
	if c == nil {
		return usageError("help: unknown command %q; see \"kvgate help\" for the commands", pos[0])
	}
	c.printHelp(stdout, c.flags())
	return nil
}

// newFlagSet is a flag set that only defines flags: command.parse reads
// the arguments and command.printHelp writes the help.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func buildVersion() string {
	if version != "dev" {
		return version
	}
	return buildinfo.Version()
}
