package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// h2cBackend starts a loopback server that speaks HTTP/1.1 and h2c.
func h2cBackend(t *testing.T, h http.Handler) string {
	t.Helper()
	s := &http.Server{Handler: h, ErrorLog: discardLog, Protocols: new(http.Protocols)}
	s.Protocols.SetHTTP1(true)
	s.Protocols.SetUnencryptedHTTP2(true)
	return serveLoopback(t, s)
}

// A route's timeouts.idle cuts a response stream that falls silent for
// longer than it, on HTTP/1.1 and h2c upstreams alike, and leaves alone a
// stream whose gaps stay below it however long the whole stream takes.
func TestRouteIdleTimeout(t *testing.T) {
	events := func(w http.ResponseWriter, r *http.Request, gap time.Duration) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 8 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(gap):
			}
		}
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/silent" {
			events(w, r, 5*time.Second)
			return
		}
		events(w, r, 60*time.Millisecond) // 8 events over about 0.5 s
	})
	for _, proto := range []string{"http1", "h2c"} {
		t.Run(proto, func(t *testing.T) {
			addr := h2cBackend(t, h)
			p := startProxy(t, `routes:
  - {name: r, backends: [{pool: b}], timeouts: {idle: 250ms}}
pools:
  - {name: b, protocol: `+proto+`, endpoints: ["`+addr+`"]}`)
			e := engines()[0]
			c := e.client()
			start := time.Now()
			resp, err := c.Get(e.url(p, "/silent"))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if n, took := strings.Count(string(b), "data:"), time.Since(start); n != 1 || took > 3*time.Second {
				t.Fatalf("silent stream: %d events in %v; want the first event, then a cut after about 250ms", n, took)
			}
			cuts := p.metrics.errors.WithLabel("upstream_idle_timeout")
			for deadline := time.Now().Add(2 * time.Second); cuts.Load() == 0 && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond) // finish runs just after the client sees the cut
			}
			if n := cuts.Load(); n != 1 {
				t.Fatalf("kvgate_errors_total{kind=upstream_idle_timeout} = %d after one cut stream, want 1", n)
			}
			resp, err = c.Get(e.url(p, "/steady"))
			if err != nil {
				t.Fatal(err)
			}
			b, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if n := strings.Count(string(b), "data:"); n != 8 || err != nil {
				t.Fatalf("steady stream: %d events, err %v; a stream with 60ms gaps should pass timeouts.idle 250ms whole", n, err)
			}
			if n := cuts.Load(); n != 1 {
				t.Fatalf("upstream_idle_timeout counted %d times; the steady stream must not count", n)
			}
		})
	}
}

// closeCounter is an upstream body that counts Close calls.
type closeCounter struct {
	io.Reader
	closed atomic.Int32
}

func (c *closeCounter) Close() error { c.closed.Add(1); return nil }

// Once the upstream body has ended, the watch no longer aborts it, however
// long the exchange takes to finish (a slow client): the connection of a
// response read whole must stay fit for the pool.
func TestIdleWatchDisarmsAtEOF(t *testing.T) {
	body := &closeCounter{Reader: strings.NewReader("data: done\n\n")}
	x := &Exchange{}
	x.up = &upstreamResponse{body: body, stream: &h2Stream{body: body, tc: &tryContext{cancel: func() {}}}}
	r := &x.reply
	r.Body = body
	x.watchIdle(r, 20*time.Millisecond)
	if _, err := io.ReadAll(r.Body); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := body.closed.Load(); n != 0 || x.idle.stop() {
		t.Fatalf("the watch closed an upstream body that had ended (%d closes)", n)
	}

	silent := &closeCounter{Reader: strings.NewReader("")} // never read: silent
	x = &Exchange{}
	x.up = &upstreamResponse{body: silent, stream: &h2Stream{body: silent, tc: &tryContext{cancel: func() {}}}}
	x.reply.Body = silent
	x.watchIdle(&x.reply, 20*time.Millisecond)
	deadline := time.Now().Add(2 * time.Second)
	for silent.closed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !x.idle.stop() || silent.closed.Load() != 1 {
		t.Fatalf("a silent upstream body was closed %d times, want once", silent.closed.Load())
	}
}
