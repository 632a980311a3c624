package proxy

import (
	"net/http"
	"net/http/pprof"
)

// mountPprof serves net/http/pprof under /debug/pprof/ (admin.pprof: true).
// The handlers are mounted on the admin mux only, never on
// http.DefaultServeMux, so importing the package exposes nothing elsewhere.
func mountPprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index) // also heap, goroutine, allocs, block, mutex, threadcreate
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
