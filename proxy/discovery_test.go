package proxy

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/kvgate/kvgate/config"
)

// A Discovered pool may start empty (503), takes endpoints without a reload,
// and a Reload with an empty list empties it again.
func TestSetEndpointsOnDiscoveredPool(t *testing.T) {
	a, b := backend(t, &named{name: "a"}), backend(t, &named{name: "b"})
	cfg, err := config.Parse([]byte(`
admin: {address: "127.0.0.1:0"}
accessLog: {path: "off"}
listeners: [{name: plain, address: "127.0.0.1:0"}]
routes: [{name: r, backends: [{pool: d}]}]
pools: [{name: d, endpoints: ["127.0.0.1:1"]}]
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Pools[0].Endpoints, cfg.Pools[0].Discovered = nil, true
	if err := config.Validate(cfg); err != nil {
		t.Fatalf("a Discovered pool without endpoints: %v", err)
	}
	p := startConfig(t, cfg, nil)
	url := "http://" + p.Listener("plain").Addr().String() + "/"
	get := func() (int, string) {
		resp, body := mustGet(t, plainClient(), url)
		return resp.StatusCode, body
	}
	if code, _ := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("empty pool: %d, want 503", code)
	}
	if err := p.SetEndpoints("d", []string{a}); err != nil {
		t.Fatal(err)
	}
	if code, body := get(); code != 200 || body != "a" {
		t.Fatalf("after SetEndpoints a: %d %q", code, body)
	}
	if err := p.SetEndpoints("d", []string{b}); err != nil {
		t.Fatal(err)
	}
	if code, body := get(); code != 200 || body != "b" {
		t.Fatalf("after SetEndpoints b: %d %q", code, body)
	}
	if err := p.Reload(cfg); err != nil { // the config's list: empty
		t.Fatal(err)
	}
	if code, _ := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("after a reload with no endpoints: %d, want 503", code)
	}
	for _, bad := range []struct{ pool, addr string }{{"nope", a}, {"d", "no-port"}} {
		if err := p.SetEndpoints(bad.pool, []string{bad.addr}); err == nil {
			t.Errorf("SetEndpoints(%s, %s): no error", bad.pool, bad.addr)
		}
	}
}

// BenchmarkSetEndpoints10k is one endpoint-only change of a 10,000-endpoint
// pool (one endpoint leaves, another arrives): the work a Kubernetes
// EndpointSlice update costs kvgate after translation.
func BenchmarkSetEndpoints10k(b *testing.B) {
	cfg, err := config.Parse([]byte(`
admin: {address: "off"}
accessLog: {path: "off"}
listeners: [{name: plain, address: "127.0.0.1:0"}]
routes: [{name: r, backends: [{pool: d}]}]
pools: [{name: d, endpoints: ["127.0.0.1:1"]}]
`), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	cfg.Pools[0].Endpoints, cfg.Pools[0].Discovered = nil, true
	p := startConfig(b, cfg, nil)
	const n = 10000
	addrs := make([]string, n+1)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("10.%d.%d.%d:8000", i>>16&255, i>>8&255, i&255)
	}
	if err := p.SetEndpoints("d", addrs[:n]); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		set := addrs[:n] // alternately without the last and without the first
		if i%2 == 0 {
			set = addrs[1:]
		}
		if err := p.SetEndpoints("d", set); err != nil {
			b.Fatal(err)
		}
	}
}
