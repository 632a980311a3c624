package proxy

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
)

// adminHandler serves /livez, /readyz and /metrics to anyone who can reach
// the admin address (the probes and Prometheus need them), and everything
// else — POST /reload, the status page and the /debug endpoints mounted
// with SetAdminUI — to callers adminAuth lets in. It is bound to loopback by
// default and must never be exposed publicly.
func (p *Proxy) adminHandler() (http.Handler, error) {
	if err := p.adminAuth.setup(p.snap.Load().cfg.Admin.TokenFile, p.adminLn.Addr()); err != nil {
		return nil, err
	}
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
	mux.Handle("POST /reload", p.adminAuth.guard(http.HandlerFunc(p.handleReload))) // reload.go
	mux.Handle("GET /metrics", newMetricsHandler(p))                                // metrics_export.go
	if p.snap.Load().cfg.Admin.Pprof {
		// Profiles show memory contents: behind the same rule as the page.
		pp := http.NewServeMux()
		mountPprof(pp) // admin_pprof.go
		mux.Handle("/debug/pprof/", p.adminAuth.guard(pp))
	}
	if p.adminUI != nil {
		mux.Handle("/", p.adminAuth.guard(p.adminUI))
	}
	return mux, nil
}

// SetAdminUI mounts h on the admin listener for every path the proxy does
// not serve itself (/livez, /readyz, /metrics, /reload): the status page and
// the /debug endpoints (package admin). Requests reach h only past the
// admin access rule (see Start's log line). Call it before Start.
func (p *Proxy) SetAdminUI(h http.Handler) { p.adminUI = h }

// adminAuth decides who may use the admin inspection endpoints. With
// admin.tokenFile set, only a caller presenting the token. Without it,
// callers on loopback only: everyone who can connect when admin listens on
// loopback (the default); when it listens beyond loopback, connections from
// the machine itself (kubectl port-forward, ssh -L) and 403 to the rest.
type adminAuth struct {
	token    []byte // nil: no token required
	loopback bool
	off      bool // not loopback and no token: inspection is refused to remote callers
	file     string
}

func (a *adminAuth) setup(tokenFile string, addr net.Addr) error {
	a.file = tokenFile
	if ta, ok := addr.(*net.TCPAddr); ok {
		a.loopback = ta.IP.IsLoopback()
	}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return fmt.Errorf("proxy: admin.tokenFile: %w (write the admin bearer token to that file, or remove admin.tokenFile)", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return fmt.Errorf("proxy: admin.tokenFile %s is empty: write the admin bearer token to it", tokenFile)
		}
		a.token = []byte(t)
	}
	a.off = !a.loopback && a.token == nil
	return nil
}

// describe is the start-up log's word on who may inspect.
func (a *adminAuth) describe() string {
	switch {
	case a.off:
		return "local callers only: admin is bound beyond loopback without admin.tokenFile, so the status page, /debug and /reload answer 403 to remote callers (/livez, /readyz and /metrics stay open); set admin.tokenFile to use them remotely"
	case a.token != nil && a.loopback:
		return "bearer token from admin.tokenFile required (loopback)"
	case a.token != nil:
		return "bearer token from admin.tokenFile required (admin is bound beyond loopback)"
	}
	return "open to callers on loopback"
}

func (a *adminAuth) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case a.off && !loopbackPeer(r):
			adminError(w, http.StatusForbidden, "the admin listener is bound beyond loopback and admin.tokenFile is not set, so inspection and reload answer callers on the machine itself only: set admin.tokenFile (and send Authorization: Bearer TOKEN), or connect through a port-forward (kubectl port-forward, ssh -L)")
			return
		case a.token != nil:
			if !a.allows(r) {
				// Basic lets a browser ask for the token (as the password).
				w.Header().Add("WWW-Authenticate", `Basic realm="kvgate admin"`)
				w.Header().Add("WWW-Authenticate", `Bearer realm="kvgate admin"`)
				adminError(w, http.StatusUnauthorized, "send the token of admin.tokenFile as Authorization: Bearer TOKEN, or as the password of HTTP basic authentication in a browser (kvgate inspect: --token-file FILE)")
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// loopbackPeer reports whether r came from the machine itself.
func loopbackPeer(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// allows reports whether r presents the token, as a bearer token or as the
// password of basic authentication (any user name).
func (a *adminAuth) allows(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if ok {
		got = strings.TrimSpace(got)
	} else if _, pw, basic := r.BasicAuth(); basic {
		got, ok = pw, true
	}
	return ok && subtle.ConstantTimeCompare([]byte(got), a.token) == 1
}

// adminError writes a JSON error body: {"error": {"code": ..., "message": ...}}.
func adminError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": status, "message": msg}})
}
