package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kvgate/kvgate/config"
)

// cutEngines are the client engines the drain and cancellation tables run:
// HTTP/1.1 (fasthttp), h2c and HTTP/2 over TLS (x/net/http2) and HTTP/3
// (quic-go), against a proxy from startProxyH3.
func cutEngines(t *testing.T) []engine {
	all := withH3(t)
	return []engine{all[0], all[1], all[3], all[4]}
}

// silentStream answers with one event and then stays silent until its
// request ends (at most 10 s); ended receives how it ended.
func silentStream(ended chan<- error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			ended <- nil
		case <-time.After(10 * time.Second):
			ended <- fmt.Errorf("upstream request still running after 10s")
		}
	}
}

// openEventStream starts a GET through e and reads the first event.
func openEventStream(t *testing.T, e engine, p *Proxy) (*http.Response, *bufio.Reader) {
	t.Helper()
	resp, err := e.client().Get(e.url(p, "/v1/stream"))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); line != "data: one\n" {
		resp.Body.Close()
		t.Fatalf("first line %q, err %v", line, err)
	}
	return resp, br
}

// readRest reads what is left of a body in the background.
func readRest(resp *http.Response, br *bufio.Reader) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, br)
		resp.Body.Close()
		done <- err
	}()
	return done
}

// TestDrainTimeoutCutsStreams: a stream still running when drainTimeout
// passes is cut on both sides, client and upstream, and Shutdown returns
// shortly after the deadline with the drain-timeout error, whichever the
// client engine and upstream protocol. The upstream is silent, so nothing
// but the drain can end the request.
func TestDrainTimeoutCutsStreams(t *testing.T) {
	const drain, bound = 300 * time.Millisecond, 2 * time.Second
	for _, up := range []string{"http1", "h2c"} {
		for _, e := range cutEngines(t) {
			t.Run(e.name+"/"+up, func(t *testing.T) {
				ended := make(chan error, 1)
				addr := h2cBackend(t, silentStream(ended))
				p := startProxyH3(t, `routes:
  - {name: r, backends: [{pool: b}]}
pools:
  - {name: b, protocol: `+up+`, endpoints: ["`+addr+`"]}`)
				resp, br := openEventStream(t, e, p)
				rest := readRest(resp, br)

				start := time.Now()
				shut := make(chan error, 1)
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), drain)
					defer cancel()
					shut <- p.Shutdown(ctx)
				}()
				select {
				case err := <-shut:
					if err == nil || !strings.Contains(err.Error(), "drainTimeout") {
						t.Errorf("Shutdown returned %v; want the drain-timeout error", err)
					}
					if took := time.Since(start); took < drain {
						t.Errorf("Shutdown returned after %v, before drainTimeout (%v)", took, drain)
					}
				case <-time.After(drain + bound):
					t.Fatalf("Shutdown still running %v after drainTimeout", bound)
				}
				if n := p.inflight(); n != 0 {
					t.Errorf("%d requests still counted in flight after Shutdown", n)
				}
				select {
				case err := <-rest:
					if err == nil {
						t.Errorf("client stream ended cleanly; want it cut")
					}
				case <-time.After(bound):
					t.Fatalf("client stream still open %v after Shutdown", bound)
				}
				select {
				case err := <-ended:
					if err != nil {
						t.Fatal(err)
					}
				case <-time.After(bound):
					t.Fatalf("upstream request still running %v after Shutdown", bound)
				}
			})
		}
	}
}

// TestShutdownRightAfterStart: a Shutdown that races with the listener's
// start leaves no fasthttp Serve loop blocked on the listener's channel.
func TestShutdownRightAfterStart(t *testing.T) {
	addr := backend(t, http.NotFoundHandler())
	certs(t)
	cfg, err := config.Parse([]byte(`accessLog: {path: "off"}
admin: {address: "off"}
listeners:
  - {name: plain, address: "127.0.0.1:0"}
`+simple(addr)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		p := startConfig(t, cfg, nil)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = p.Shutdown(ctx)
		cancel()
	}
	const stuck = "(*chanListener).Accept"
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		n := runtime.Stack(buf, true)
		if !strings.Contains(string(buf[:n]), stuck) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a goroutine is still blocked in %s after Shutdown:\n%s", stuck, buf[:n])
		}
	}
}
