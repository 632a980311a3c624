package proxy

import (
	"net/http"

	"github.com/kvgate/kvgate/config"
	"strings"
	"testing"
)

// TestAdminPprof: /debug/pprof/ answers only with admin.pprof: true, and
// serves a real profile (the goroutine dump) then.
func TestAdminPprof(t *testing.T) {
	for _, tc := range []struct {
		admin string
		want  int
	}{{"", http.StatusNotFound}, {"pprof: false", http.StatusNotFound}, {"pprof: true", http.StatusOK}} {
		t.Run(tc.admin, func(t *testing.T) {
			cfg := proxyConfig(t, "routes:\n  - {name: r, backends: [{pool: b}]}\npools:\n  - {name: b, endpoints: [\"127.0.0.1:1\"]}", false)
			cfg.Admin.Pprof = strings.HasSuffix(tc.admin, "true")
			p := startConfig(t, cfg, nil)
			base := "http://" + p.AdminAddr().String()
			resp, body := mustGet(t, plainClient(), base+"/debug/pprof/goroutine?debug=1")
			if resp.StatusCode != tc.want {
				t.Fatalf("/debug/pprof/goroutine: %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == http.StatusOK && !strings.Contains(body, "goroutine profile:") {
				t.Fatalf("/debug/pprof/goroutine is not a goroutine profile:\n%.300s", body)
			}
			if resp, _ := mustGet(t, plainClient(), base+"/debug/pprof/cmdline"); resp.StatusCode != tc.want {
				t.Fatalf("/debug/pprof/cmdline: %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

// TestAdminPprofConfig: the switch is the YAML key admin.pprof, off by default.
func TestAdminPprofConfig(t *testing.T) {
	for yaml, want := range map[string]bool{
		"admin: {address: \"127.0.0.1:0\"}\n":              false,
		"admin: {address: \"127.0.0.1:0\", pprof: true}\n": true,
	} {
		cfg, err := config.Parse([]byte(yaml+"listeners: [{name: l, address: \"127.0.0.1:0\"}]\nroutes: [{name: r, backends: [{pool: b}]}]\npools: [{name: b, endpoints: [\"127.0.0.1:1\"]}]\n"), "t.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Admin.Pprof != want {
			t.Errorf("%s: admin.pprof = %v, want %v", yaml, cfg.Admin.Pprof, want)
		}
	}
}
