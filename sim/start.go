package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Running is a Server listening on a socket, returned by Start.
type Running struct {
	// Addr is the bound host:port, e.g. "127.0.0.1:41234".
	Addr string
	// URL is "http://" + Addr.
	URL string
	// Server is the simulator behind the socket (for Stats).
	Server *Server
	// KVEvents publishes the KV events when Config.KVEvents.Endpoint was
	// set; nil otherwise. Its Endpoint and ReplayEndpoint are the bound
	// addresses.
	KVEvents *KVPublisher

	http *http.Server
	done chan struct{} // closed when Serve returns
	stop func() bool   // detaches the ctx watcher
}

// Start validates cfg, listens on addr ("127.0.0.1:0" picks a free port) and
// serves the simulator with net/http (HTTP/1.1 with keep-alive, and h2c is
// not offered). When ctx ends the server is closed as by Close. The caller
// must call Close or Shutdown (or cancel ctx and then call either) to release
// every goroutine.
func Start(ctx context.Context, addr string, cfg Config) (*Running, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sim: listen on %s: %w; pick a free address or use 127.0.0.1:0", addr, err)
	}
	s := New(cfg)
	var kv *KVPublisher
	if cfg.KVEvents.Endpoint != "" {
		if kv, err = startKVPublisher(cfg.KVEvents); err != nil {
			_ = ln.Close()
			return nil, err
		}
		s.eng.mu.Lock()
		s.eng.kv, s.eng.pool.events = kv, true
		s.eng.mu.Unlock()
	}
	r := &Running{
		KVEvents: kv,
		Addr:     ln.Addr().String(),
		Server:   s,
		http:     &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second},
		done:     make(chan struct{}),
	}
	r.URL = "http://" + r.Addr
	go func() {
		defer close(r.done)
		_ = r.http.Serve(ln)
	}()
	r.stop = context.AfterFunc(ctx, func() { _ = r.Close() })
	return r, nil
}

// Close stops at once: it cancels every request in flight, closes the
// listener and every connection, and returns when all handlers have returned.
// It is safe to call more than once and concurrently with Shutdown.
func (r *Running) Close() error {
	r.stop()
	r.Server.cancel() // unblock sleeping handlers first
	err := r.http.Close()
	r.Server.Close()
	<-r.done
	if r.KVEvents != nil {
		r.KVEvents.close()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Shutdown stops accepting, lets requests in flight finish, and returns when
// they have; if ctx ends first it closes as Close does and returns ctx's error.
func (r *Running) Shutdown(ctx context.Context) error {
	r.stop()
	err := r.http.Shutdown(ctx)
	if err != nil {
		_ = r.Close()
		return fmt.Errorf("sim: shutdown cut short, requests in flight were aborted: %w", err)
	}
	r.Server.Close()
	<-r.done
	if r.KVEvents != nil {
		r.KVEvents.close()
	}
	return nil
}
