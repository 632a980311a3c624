package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cancelCase is one request of the cancellation matrix as its upstream
// handler sees it.
type cancelCase struct {
	mid     bool          // answer the headers and one event before falling silent
	arrived chan struct{} // closed once the upstream has the request (and, mid, flushed the event)
	gone    chan struct{} // closed by the test once the client has left, to make the upstream write
	ended   chan int      // the writes made after gone when the request ended; -1: it never did
}

// cancelUpstream serves the cases registered in cases under their X-Case
// header: silent (after the first event, for mid) until the request ends,
// or, once gone is closed, writing an event every 20 ms until it does.
func cancelUpstream(cases *sync.Map) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, ok := cases.Load(r.Header.Get("X-Case"))
		if !ok {
			http.Error(w, "unknown case", 400)
			return
		}
		c := v.(*cancelCase)
		// Read the body as model servers do: net/http watches for the
		// client closing only once it has (an HTTP/3 GET arrives with an
		// empty body of unknown length, so it is forwarded chunked).
		_, _ = io.Copy(io.Discard, r.Body)
		if c.mid {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: one\n\n")
			w.(http.Flusher).Flush()
		}
		close(c.arrived)
		select {
		case <-r.Context().Done():
			c.ended <- 0
			return
		case <-c.gone:
		case <-time.After(10 * time.Second):
			c.ended <- -1
			return
		}
		for i := 1; i <= 100; i++ { // 2 s at most
			select {
			case <-r.Context().Done():
				c.ended <- i - 1
				return
			case <-time.After(20 * time.Millisecond):
			}
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
		}
		c.ended <- -1
	}
}

// TestCancelReachesUpstream is the cancellation matrix: client engine x
// upstream protocol x {before the response headers, mid-stream}. A client
// that gives up must end the upstream request within a bound, and the
// endpoint's in-flight count must return to 0.
//
// HTTP/2 and HTTP/3 clients cancel their stream, which kvgate sees at once:
// the upstream must see the end while it is still silent. An HTTP/1.1
// client just closes its connection, which fasthttp only notices when a
// write to it fails: the upstream writes after the client left and must see
// the end by its second write (README: "HTTP/1.1 clients").
func TestCancelReachesUpstream(t *testing.T) {
	const bound = 2 * time.Second
	var cases sync.Map
	h := cancelUpstream(&cases)
	h2c := h2cBackend(t, h)
	ups := []struct{ proto, addr, tls string }{
		{"http1", h2c, ""},
		{"h2c", h2c, ""},
		{"h2", h2TLSBackend(t, h), ", tls: {insecureSkipVerify: true}"},
	}
	var n atomic.Int64
	for _, up := range ups {
		p := startProxyH3(t, `routes:
  - {name: r, backends: [{pool: b}]}
pools:
  - {name: b, protocol: `+up.proto+`, endpoints: ["`+up.addr+`"]`+up.tls+`}`)
		for _, e := range cutEngines(t) {
			client := e.client()
			for _, mid := range []bool{false, true} {
				name := e.name + "/" + up.proto + "/before-headers"
				if mid {
					name = e.name + "/" + up.proto + "/mid-stream"
				}
				t.Run(name, func(t *testing.T) {
					id := strconv.FormatInt(n.Add(1), 10)
					c := &cancelCase{mid: mid, arrived: make(chan struct{}), gone: make(chan struct{}), ended: make(chan int, 1)}
					cases.Store(id, c)
					defer cases.Delete(id)
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					req, _ := http.NewRequestWithContext(ctx, "GET", e.url(p, "/v1/completions"), nil)
					req.Header.Set("X-Case", id)
					got := make(chan error, 1)
					read := make(chan struct{}) // the client has the first event
					go func() {
						resp, err := client.Do(req)
						if err == nil {
							line, rerr := bufio.NewReader(resp.Body).ReadString('\n')
							if line != "data: one\n" {
								err = fmt.Errorf("first line %q, err %v", line, rerr)
							}
							close(read)
							<-ctx.Done()
							resp.Body.Close()
						}
						got <- err
					}()
					select {
					case <-c.arrived:
					case <-time.After(5 * time.Second):
						t.Fatal("request never reached the upstream")
					}
					if mid {
						select { // cancel only once the stream has reached the client
						case <-read:
						case err := <-got:
							t.Fatal(err)
						case <-time.After(5 * time.Second):
							t.Fatal("the first event never reached the client")
						}
					}
					cancel()
					if err := <-got; mid && err != nil {
						t.Fatal(err)
					}
					if e.proto == 1 {
						close(c.gone)
					}
					select {
					case writes := <-c.ended:
						if e.proto == 1 {
							t.Logf("upstream saw the end after %d writes", writes)
						}
						switch {
						case writes < 0:
							t.Fatalf("upstream request outlived the client by %v", bound)
						case e.proto != 1 && writes != 0:
							t.Fatalf("upstream saw the end only after %d writes; want it while silent", writes)
						case e.proto == 1 && (writes < 1 || writes > 2):
							t.Fatalf("HTTP/1.1 client: upstream saw the end after %d writes; README says the second", writes)
						}
					case <-time.After(bound + time.Second):
						t.Fatalf("upstream request still running %v after the client left", bound)
					}
					waitInflightZero(t, p)
				})
			}
		}
	}
}

// TestCancelWatchKeepsRequestFraming: requests from HTTP/2 clients to an
// HTTP/1.1 upstream carry a cancel watch as their body stream; on the wire
// their framing (Content-Length, Transfer-Encoding) stays what the HTTP/1.1
// engine's requests, which have none, get.
func TestCancelWatchKeepsRequestFraming(t *testing.T) {
	heads := make(chan []string, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var framing []string
					length := 0
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if line == "\r\n" {
							break
						}
						k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
						switch strings.ToLower(k) {
						case "content-length":
							length, _ = strconv.Atoi(strings.TrimSpace(v))
							framing = append(framing, line)
						case "transfer-encoding":
							framing = append(framing, line)
						}
					}
					if _, err := io.CopyN(io.Discard, br, int64(length)); err != nil {
						return
					}
					heads <- framing
					if _, err := io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n"); err != nil {
						return
					}
				}
			}()
		}
	}()
	p := startProxy(t, simple(ln.Addr().String()))
	all := engines()
	h1, h2 := all[0], all[1]
	send := func(e engine, method, body string) []string {
		t.Helper()
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, e.url(p, "/"), r)
		resp, err := e.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		select {
		case f := <-heads:
			return f
		case <-time.After(5 * time.Second):
			t.Fatal("upstream got no request")
			return nil
		}
	}
	for _, c := range []struct{ method, body string }{
		{"GET", ""}, {"HEAD", ""}, {"POST", ""}, {"DELETE", ""}, {"POST", `{"model":"m"}`},
	} {
		want, got := send(h1, c.method, c.body), send(h2, c.method, c.body)
		if !slices.Equal(got, want) {
			t.Errorf("%s with body %q: HTTP/2 client's request framed %q upstream; HTTP/1.1 client's %q", c.method, c.body, got, want)
		}
	}
}
