package config

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

func minimal() *Config {
	return &Config{
		Listeners: []Listener{{Name: "l", Address: "127.0.0.1:0", TLS: &ListenerTLS{CertFile: "c", KeyFile: "k"}}},
		Identity:  &Identity{},
		Routes: []Route{{
			Name: "r",
			Matches: []Match{{
				Path:        &PathMatch{Value: "/v1/"},
				Headers:     []HeaderMatch{{Name: "x", Value: "y"}},
				QueryParams: []HeaderMatch{{Name: "q", Value: "1"}},
				Model:       &StringMatch{Value: "m"},
			}, {Method: "GET"}},
			Filters:  []Filter{{RequestRedirect: &RequestRedirect{}}, {RequestMirror: &RequestMirror{Pool: "p"}}},
			Backends: []Backend{{Pool: "p"}},
			Retry:    &Retry{Attempts: 1},
		}, {Name: "bare", Backends: []Backend{{Pool: "p"}}}},
		Pools: []Pool{{Name: "p", Endpoints: []string{"127.0.0.1:1"}, Inference: &Inference{}}},
	}
}

// TestDefaults checks each default the configuration contract names.
func TestDefaults(t *testing.T) {
	c := minimal()
	Default(c)
	r, p, in := c.Routes[0], c.Pools[0], c.Pools[0].Inference
	cases := []struct {
		key       string
		got, want any
	}{
		{"admin.address", c.Admin.Address, "127.0.0.1:9901"},
		{"listeners[0].protocols", c.Listeners[0].Protocols, []string{"http1", "http2"}},
		{"listeners[0].tls.clientAuth", c.Listeners[0].TLS.ClientAuth, "none"},
		{"limits.maxHeaderBytes", c.Limits.MaxHeaderBytes, 65536},
		{"limits.maxHeaders", c.Limits.MaxHeaders, 100},
		{"limits.maxBodyBytes", c.Limits.MaxBodyBytes, int64(32 << 20)},
		{"limits.readHeaderTimeout", c.Limits.ReadHeaderTimeout.D(), 10 * time.Second},
		{"limits.idleTimeout", c.Limits.IdleTimeout.D(), 120 * time.Second},
		{"limits.streamIdleTimeout", c.Limits.StreamIdleTimeout.D(), 300 * time.Second},
		{"limits.maxConcurrentStreams", c.Limits.MaxConcurrentStreams, 100},
		{"limits.maxConnections", c.Limits.MaxConnections, 10000},
		{"drainTimeout", c.DrainTimeout.D(), 30 * time.Second},
		{"accessLog.path", c.AccessLog.Path, "stdout"},
		{"paths.mergeSlashes", *c.Paths.MergeSlashes, true},
		{"paths.escapedSlashes", c.Paths.EscapedSlashes, "reject"},
		{"identity.startupTimeout", c.Identity.StartupTimeout.D(), 30 * time.Second},
		{"pools[0].protocol", p.Protocol, "http1"},
		{"pools[0].balancer", p.Balancer, "least-request"},
		{"pools[0].dialTimeout", p.DialTimeout.D(), 5 * time.Second},
		{"pools[0].idleConnTimeout", p.IdleConnTimeout.D(), 90 * time.Second},
		{"pools[0].resolveInterval", p.ResolveInterval.D(), 5 * time.Second},
		{"inference.modelServer", in.ModelServer, "vllm"},
		{"inference.picker", in.Picker, "latency"},
		{"inference.blockSize", in.BlockSize, 64},
		{"inference.cacheBlocks", in.CacheBlocks, 16384},
		{"inference.maxPromptBytes", in.MaxPromptBytes, 131072},
		{"inference.loadBound", in.LoadBound, 1.25},
		{"inference.metricsPath", in.MetricsPath, "/metrics"},
		{"inference.scrapeInterval", in.ScrapeInterval.D(), 50 * time.Millisecond},
		{"inference.queueThreshold", in.QueueThreshold, 5},
		{"inference.kvThreshold", in.KVThreshold, 0.8},
		{"inference.queueSize", in.QueueSize, 1024},
		{"inference.queueTimeout", in.QueueTimeout.D(), 30 * time.Second},
		{"inference.sessionHeader", in.SessionHeader, "x-session-id"},
		{"routes[0].backends[0].weight", *r.Backends[0].Weight, 1},
		{"routes[0].matches[0].path.type", r.Matches[0].Path.Type, "PathPrefix"},
		{"routes[0].matches[0].headers[0].type", r.Matches[0].Headers[0].Type, "Exact"},
		{"routes[0].matches[0].queryParams[0].type", r.Matches[0].QueryParams[0].Type, "Exact"},
		{"routes[0].matches[0].model.type", r.Matches[0].Model.Type, "Exact"},
		{"routes[0].matches[1].path (absent)", *r.Matches[1].Path, PathMatch{Type: "PathPrefix", Value: "/"}},
		{"routes[0].filters[0].type", r.Filters[0].Type, "RequestRedirect"},
		{"routes[0].filters[0].requestRedirect.statusCode", r.Filters[0].RequestRedirect.StatusCode, 302},
		{"routes[0].filters[1].requestMirror.percent", r.Filters[1].RequestMirror.Percent, 100.0},
		{"routes[0].retry.connectFailures", *r.Retry.ConnectFailures, true},
		{"routes[0].retry.budgetPercent", r.Retry.BudgetPercent, 20.0},
		{"routes[0].retry.backoff", r.Retry.Backoff.D(), 25 * time.Millisecond},
		{"routes[1].matches (absent)", c.Routes[1].Matches, []Match{{Path: &PathMatch{Type: "PathPrefix", Value: "/"}}}},
	}
	for _, tc := range cases {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.key, tc.got, tc.want)
		}
	}
	if err := Validate(c); err != nil {
		t.Errorf("defaulted minimal config does not validate:\n%v", err)
	}
}

func TestDefaultIdempotent(t *testing.T) {
	a, b := minimal(), minimal()
	Default(a)
	Default(b)
	Default(b)
	if !reflect.DeepEqual(a, b) {
		t.Error("Default applied twice differs from once")
	}
	Default(nil) // must not panic
}

func TestDefaultKeepsSetValues(t *testing.T) {
	c, err := Load("../examples/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Routes[0].Listeners[0] != "public" || c.Pools[0].Protocol != "h2" || c.Pools[2].Balancer != "round-robin" ||
		c.Routes[2].Filters[0].RequestRedirect.StatusCode != 308 || c.Routes[0].Filters[3].RequestMirror.Percent != 10 ||
		c.Pools[1].Inference.ModelServer != "sglang" || !slices.Equal(c.Listeners[1].Protocols, []string{"http2"}) {
		t.Error("Default overwrote a value set in full.yaml")
	}
	zero := 0
	r := Route{Backends: []Backend{{Weight: &zero}}}
	defaultRoute(&r)
	if *r.Backends[0].Weight != 0 {
		t.Error("Default replaced an explicit weight 0")
	}
	f := false
	r = Route{Retry: &Retry{ConnectFailures: &f}}
	defaultRoute(&r)
	if *r.Retry.ConnectFailures {
		t.Error("Default replaced an explicit connectFailures: false")
	}
}

// TestDefaultProtocolsNotShared makes sure listeners do not share (and so
// cannot corrupt) the package's default slice.
func TestDefaultProtocolsNotShared(t *testing.T) {
	c := &Config{Listeners: []Listener{{}, {}}}
	Default(c)
	c.Listeners[0].Protocols[0] = "changed"
	if DefaultProtocols[0] != "http1" || c.Listeners[1].Protocols[0] != "http1" {
		t.Error("listeners share the default protocols slice")
	}
}
