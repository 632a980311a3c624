// Command kvgate is an inference-aware L7 reverse proxy: one binary that
// terminates TLS, authorizes callers, routes with Gateway API semantics and
// picks model-server endpoints by KV-cache affinity.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
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
	if err := run(ctx, args); err != nil {
		fmt.Fprintln(stderr, "kvgate:", err)
		return exitCode(err)
	}
	return 0
}
