// Command kvgate is an inference-aware L7 reverse proxy: one binary that
// terminates TLS, authorizes callers, routes with Gateway API semantics and
// picks model-server endpoints by KV-cache affinity.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvgate:", err)
		os.Exit(exitCode(err))
	}
}
