package proxy

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestCancelledBodyNotReadAfterFinish: net/http may go on reading a request
// body from its own goroutine after the round trip to an h2 upstream ended;
// once the request is finished (its Exchange recycled) it must read nothing
// through it. An HTTP/3 GET arrives with an empty body of unknown length,
// which net/http reads while the client cancels: under -race the old code
// reported the read racing with the recycling, or crashed on it.
func TestCancelledBodyNotReadAfterFinish(t *testing.T) {
	arrived := make(chan struct{}, 1)
	addr := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done() // the body is left unread
	}))
	p := startProxyH3(t, `routes:
  - {name: r, backends: [{pool: b}]}
pools:
  - {name: b, protocol: h2c, endpoints: ["`+addr+`"]}`)
	e := cutEngines(t)[3]
	client := e.client()
	for range 100 {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", e.url(p, "/"), nil)
		got := make(chan error, 1)
		go func() {
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			got <- err
		}()
		select {
		case <-arrived:
		case <-time.After(5 * time.Second):
			t.Fatal("request never reached the upstream")
		}
		cancel()
		<-got
	}
	waitInflightZero(t, p)
}
