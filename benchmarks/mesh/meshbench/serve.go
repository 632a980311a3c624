package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

type serveOpts struct {
	addr string
	size int
}

func (o *serveOpts) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&o.addr, "addr", "0.0.0.0:8080", "listen on `HOST:PORT`")
	fs.IntVar(&o.size, "size", 1024, "body `BYTES` of every answer")
	return fs
}

// runServe is the test server of the cluster kit: HTTP/1.1 (and h2c is not
// offered), every GET or POST answers 200 with --size bytes, until ctx ends.
func runServe(ctx context.Context, args []string, stdout io.Writer) error {
	var o serveOpts
	if err := parseFlags(o.flagSet(), args, stdout); err != nil {
		return err
	}
	if o.size < 0 || o.size > 64<<20 {
		return usageError{fmt.Sprintf("serve: --size %d: give 0 to 67108864 bytes", o.size)}
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Fprintf(stdout, "{\"msg\":\"serving\",\"addr\":%q,\"size\":%d}\n", ln.Addr().String(), o.size)
	return serve(ctx, ln, o.size)
}

func serve(ctx context.Context, ln net.Listener, size int) error {
	body := make([]byte, size)
	for i := range body {
		body[i] = 'k'
	}
	clen := strconv.Itoa(size)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", clen)
			w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
