// Command meshbench is the measuring half of the mesh benchmark kit
// (benchmarks/mesh/run.sh): the load client, the 1 KiB test server, a local
// SPIFFE issuer with a Workload API per identity, and the collector and
// report writer that turn the raw outputs of a run into one table and chart.
//
//	meshbench load    open-loop HTTP/1.1 load at a fixed rate; one JSON object on stdout
//	meshbench serve   the test server: every GET answers --size bytes
//	meshbench spiffe  issue SVIDs for local identities, write them as files, serve each on a Workload API socket
//	meshbench collect one result row (JSON) from a load result and proxy CPU / memory readings
//	meshbench report  the Markdown table and PNG chart of a run's rows; --check fails on gaps
//
// It owns load generation, counting and formatting. It must not install
// or remove anything (run.sh does) and reads only the files it is given.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

var commands = []struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout io.Writer) error
}{
	{"load", "open-loop HTTP/1.1 load at a fixed rate (1 KiB GETs or streamed chat completions); JSON on stdout", runLoad},
	{"serve", "serve GET requests with a fixed-size body (the test server)", runServe},
	{"spiffe", "issue local SPIFFE SVIDs, write them as files and serve each on a Workload API socket", runSPIFFE},
	{"collect", "make one result row from a load result and proxy CPU and memory readings", runCollect},
	{"report", "write the Markdown table and PNG chart of result rows", runReport},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: meshbench COMMAND [flags]   (meshbench COMMAND --help for its flags)")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ue usageError
	switch {
	case err == nil:
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "meshbench:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "meshbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return usageError{"no command given"}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout)
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
	}
	usage(stderr)
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

// parseFlags parses args into fs, refusing positional arguments (no
// argument is silently ignored). --help prints the flags to stdout and
// returns flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fmt.Fprintf(stdout, "usage: meshbench %s [flags]\n", fs.Name())
			fs.PrintDefaults()
			return err
		}
		return usageError{fmt.Sprintf("%s: %v", fs.Name(), err)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q (flags only)", fs.Name(), fs.Arg(0))}
	}
	return nil
}
