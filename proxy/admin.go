package proxy

import (
	"net/http"
)

// adminHandler serves /livez, /readyz and /metrics. It is bound to loopback
// by default and must never be exposed publicly.
func (p *Proxy) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if p.draining.Load() {
			http.Error(w, "draining\n", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("POST /reload", p.handleReload)   // reload.go
	mux.Handle("GET /metrics", newMetricsHandler(p)) // metrics_export.go
	if p.snap.Load().cfg.Admin.Pprof {
		mountPprof(mux) // admin_pprof.go
	}
	return mux
}
