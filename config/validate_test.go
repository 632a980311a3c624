package config

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/kvgate/kvgate/pick"
)

// quick returns the parsed quickstart configuration, positions included.
func quick(t testing.TB) *Config {
	t.Helper()
	c, err := Parse(DefaultYAML, "quickstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

func TestValidate(t *testing.T) {
	cases := []struct {
		name     string
		mutate   func(c *Config)
		path     string // "" means: must be valid
		contains string
	}{
		{"quickstart", func(c *Config) {}, "", ""},
		{"tracing on", func(c *Config) { c.Tracing.Endpoint = "http://127.0.0.1:4318" }, "", ""},
		{"tracing endpoint without scheme", func(c *Config) { c.Tracing.Endpoint = "127.0.0.1:4318" }, "tracing.endpoint", "http:// or https://"},
		{"tracing endpoint grpc scheme", func(c *Config) { c.Tracing.Endpoint = "grpc://collector:4317" }, "tracing.endpoint", "http:// or https://"},
		{"tracing endpoint not a URL", func(c *Config) { c.Tracing.Endpoint = "http://[::1" }, "tracing.endpoint", "http:// or https:// URL"},
		{"sample ratio above 1", func(c *Config) { c.Tracing.SampleRatio = ptr(1.5) }, "tracing.sampleRatio", "between 0 and 1"},
		{"sample ratio negative", func(c *Config) { c.Tracing.SampleRatio = ptr(-0.1) }, "tracing.sampleRatio", "between 0 and 1"},
		{"metrics push without endpoint", func(c *Config) { c.Tracing.MetricsInterval = Duration(60e9) }, "tracing.metricsInterval", "needs tracing.endpoint"},
		{"sample ratio 0", func(c *Config) { c.Tracing.SampleRatio = ptr(0.0) }, "", ""},
		{"escaped slashes decode", func(c *Config) { c.Paths.EscapedSlashes = "decode" }, "", ""},
		{"escaped slashes keep, no merging", func(c *Config) { c.Paths.EscapedSlashes = "keep"; c.Paths.MergeSlashes = ptr(false) }, "", ""},
		{"escaped slashes misspelt", func(c *Config) { c.Paths.EscapedSlashes = "decoded" }, "paths.escapedSlashes", `unknown escapedSlashes "decoded"; did you mean "decode"?`},
		{"escaped slashes unknown", func(c *Config) { c.Paths.EscapedSlashes = "allow" }, "paths.escapedSlashes", "use one of reject, decode, keep"},
		{"no listeners", func(c *Config) { c.Listeners = nil }, "listeners", "at least one listener"},
		{"listener without name", func(c *Config) { c.Listeners[0].Name = "" }, "listeners[0].name", "needs a name"},
		{"name with space", func(c *Config) { c.Pools[0].Name = "a b"; c.Routes[0].Backends[0].Pool = "a b" }, "pools[0].name", "spaces"},
		{"duplicate listener", func(c *Config) {
			c.Listeners = append(c.Listeners, Listener{Name: "plain", Address: "127.0.0.1:8081"})
		}, "listeners[1].name", `"plain" is already used by listeners[0]`},
		{"duplicate address", func(c *Config) {
			c.Listeners = append(c.Listeners, Listener{Name: "b", Address: "127.0.0.1:8080", Protocols: []string{"http1"}})
		}, "listeners[1].address", "already used by listeners[0].address"},
		{"admin address clash", func(c *Config) { c.Admin.Address = "127.0.0.1:8080" }, "listeners[0].address", "already used by admin.address"},
		{"port 0 twice is fine", func(c *Config) {
			c.Listeners[0].Address = "127.0.0.1:0"
			c.Listeners = append(c.Listeners, Listener{Name: "b", Address: "127.0.0.1:0"})
		}, "", ""},
		{"bad listener address", func(c *Config) { c.Listeners[0].Address = "8080" }, "listeners[0].address", "not host:port"},
		{"bad listener port", func(c *Config) { c.Listeners[0].Address = "127.0.0.1:99999" }, "listeners[0].address", "invalid port"},
		{"admin off", func(c *Config) { c.Admin.Address = "off" }, "", ""},
		{"bad admin", func(c *Config) { c.Admin.Address = "9901" }, "admin.address", `"off" to disable`},
		{"unknown protocol", func(c *Config) { c.Listeners[0].Protocols = []string{"http1", "h3"} }, "listeners[0].protocols[1]", `unknown protocol "h3"`},
		{"duplicate protocol", func(c *Config) { c.Listeners[0].Protocols = []string{"http1", "http1"} }, "listeners[0].protocols[1]", "listed twice"},
		{"http3 without tls", func(c *Config) { c.Listeners[0].Protocols = []string{"http3"} }, "listeners[0].protocols[0]", "http3 needs tls"},
		{"http3 with tls", func(c *Config) {
			c.Listeners[0].Protocols = []string{"http3"}
			c.Listeners[0].TLS = &ListenerTLS{CertFile: "a", KeyFile: "b", ClientAuth: "none"}
		}, "", ""},
		{"tls without files", func(c *Config) { c.Listeners[0].TLS = &ListenerTLS{ClientAuth: "none"} }, "listeners[0].tls", "certFile and keyFile, or spiffe: true"},
		{"tls without key", func(c *Config) { c.Listeners[0].TLS = &ListenerTLS{CertFile: "a", ClientAuth: "none"} }, "listeners[0].tls.keyFile", "add keyFile"},
		{"tls spiffe and files", func(c *Config) {
			c.Identity = &Identity{}
			c.Listeners[0].TLS = &ListenerTLS{CertFile: "a", KeyFile: "b", SPIFFE: true, ClientAuth: "none"}
		}, "listeners[0].tls", "not both"},
		{"spiffe without identity", func(c *Config) { c.Listeners[0].TLS = &ListenerTLS{SPIFFE: true, ClientAuth: "none"} }, "listeners[0].tls.spiffe", "needs an identity section"},
		{"bad clientAuth", func(c *Config) {
			c.Listeners[0].TLS = &ListenerTLS{CertFile: "a", KeyFile: "b", ClientAuth: "Require"}
		}, "listeners[0].tls.clientAuth", `did you mean "require"?`},
		{"require without CA", func(c *Config) {
			c.Listeners[0].TLS = &ListenerTLS{CertFile: "a", KeyFile: "b", ClientAuth: "require"}
		}, "listeners[0].tls.clientAuth", "add clientCAFile"},
		{"bad trusted proxy", func(c *Config) { c.Listeners[0].TrustedProxies = []string{"10.0.0.0/8", "office"} }, "listeners[0].trustedProxies[1]", "not an IP address or CIDR"},
		{"route to unknown listener", func(c *Config) { c.Routes[0].Listeners = []string{"plian"} }, "routes[0].listeners[0]", `did you mean "plain"?`},
		{"bad hostname", func(c *Config) { c.Routes[0].Hostnames = []string{"api.example.com:443"} }, "routes[0].hostnames[0]", "not a hostname"},
		{"wildcard hostname", func(c *Config) { c.Routes[0].Hostnames = []string{"*.example.com", "10.0.0.1"} }, "", ""},
		{"no backends", func(c *Config) { c.Routes[0].Backends = nil }, "routes[0].backends", "at least one backend"},
		{"redirect needs no backend", func(c *Config) {
			c.Routes[0].Backends = nil
			c.Routes[0].Filters = []Filter{{Type: "RequestRedirect", RequestRedirect: &RequestRedirect{StatusCode: 301}}}
		}, "", ""},
		{"unknown pool", func(c *Config) { c.Routes[0].Backends[0].Pool = "gpu" }, "routes[0].backends[0].pool", `no pool named "gpu"; define it under pools or use one of backend`},
		{"negative weight", func(c *Config) { c.Routes[0].Backends[0].Weight = ptr(-1) }, "routes[0].backends[0].weight", "0 or more"},
		{"all weights zero", func(c *Config) { c.Routes[0].Backends[0].Weight = ptr(0) }, "routes[0].backends", "every backend weight is 0"},
		{"model rewrite all zero", func(c *Config) {
			c.Routes[0].Backends[0].ModelRewrite = []ModelTarget{{Model: "a"}, {Model: "b"}}
		}, "routes[0].backends[0].modelRewrite", "every model weight is 0"},
		{"path type", func(c *Config) { c.Routes[0].Matches[0].Path.Type = "pathprefix" }, "routes[0].matches[0].path.type", `did you mean "PathPrefix"?`},
		{"path without slash", func(c *Config) { c.Routes[0].Matches[0].Path.Value = "v1" }, "routes[0].matches[0].path.value", `must start with "/"`},
		{"regex path may omit slash", func(c *Config) {
			c.Routes[0].Matches[0].Path = &PathMatch{Type: "RegularExpression", Value: `^.*/chat$`}
		}, "", ""},
		{"bad regex", func(c *Config) {
			c.Routes[0].Matches[0].Path = &PathMatch{Type: "RegularExpression", Value: `(?=x)`}
		}, "routes[0].matches[0].path.value", "RE2"},
		{"bad method", func(c *Config) { c.Routes[0].Matches[0].Method = "FETCH" }, "routes[0].matches[0].method", "use one of GET"},
		{"bad header name", func(c *Config) {
			c.Routes[0].Matches[0].Headers = []HeaderMatch{{Name: "x:y", Type: "Exact"}}
		}, "routes[0].matches[0].headers[0].name", "not a valid header name"},
		{"bad header regex", func(c *Config) {
			c.Routes[0].Matches[0].Headers = []HeaderMatch{{Name: "x", Value: "[", Type: "RegularExpression"}}
		}, "routes[0].matches[0].headers[0].value", "does not compile"},
		{"bad model match type", func(c *Config) {
			c.Routes[0].Matches[0].Model = &StringMatch{Value: "m", Type: "Prefix"}
		}, "routes[0].matches[0].model.type", "unknown model match type"},
		{"empty filter", func(c *Config) { c.Routes[0].Filters = []Filter{{}} }, "routes[0].filters[0]", "needs one of"},
		{"two filter fields", func(c *Config) {
			c.Routes[0].Filters = []Filter{{URLRewrite: &URLRewrite{}, RequestMirror: &RequestMirror{Pool: "backend", Percent: 1}}}
		}, "routes[0].filters[0]", "exactly one of URLRewrite, RequestMirror"},
		{"filter type disagrees", func(c *Config) {
			c.Routes[0].Filters = []Filter{{Type: "URLRewrite", RequestMirror: &RequestMirror{Pool: "backend", Percent: 1}}}
		}, "routes[0].filters[0].type", "does not match the RequestMirror"},
		{"filter type unknown", func(c *Config) {
			c.Routes[0].Filters = []Filter{{Type: "Mirror", RequestMirror: &RequestMirror{Pool: "backend", Percent: 1}}}
		}, "routes[0].filters[0].type", "unknown filter type"},
		{"redirect status", func(c *Config) {
			c.Routes[0].Filters = []Filter{{RequestRedirect: &RequestRedirect{StatusCode: 305}}}
		}, "routes[0].filters[0].requestRedirect.statusCode", "301, 302, 303, 307, 308"},
		{"redirect and rewrite", func(c *Config) {
			c.Routes[0].Filters = []Filter{{RequestRedirect: &RequestRedirect{StatusCode: 302}}, {URLRewrite: &URLRewrite{Hostname: "x"}}}
		}, "routes[0].filters", "cannot be used together"},
		{"mirror unknown pool", func(c *Config) {
			c.Routes[0].Filters = []Filter{{RequestMirror: &RequestMirror{Pool: "shadow", Percent: 5}}}
		}, "routes[0].filters[0].requestMirror.pool", `no pool named "shadow"`},
		{"mirror percent", func(c *Config) {
			c.Routes[0].Filters = []Filter{{RequestMirror: &RequestMirror{Pool: "backend", Percent: 101}}}
		}, "routes[0].filters[0].requestMirror.percent", "between 0 and 100"},
		{"backend filter checked", func(c *Config) {
			c.Routes[0].Backends[0].Filters = []Filter{{RequestMirror: &RequestMirror{Pool: "nope", Percent: 5}}}
		}, "routes[0].backends[0].filters[0].requestMirror.pool", "no pool named"},
		{"header modifier name", func(c *Config) {
			c.Routes[0].Filters = []Filter{{RequestHeaderModifier: &HeaderModifier{Remove: []string{"bad header"}}}}
		}, "routes[0].filters[0].requestHeaderModifier.remove[0]", "not a valid header name"},
		{"header modifier value", func(c *Config) {
			c.Routes[0].Filters = []Filter{{ResponseHeaderModifier: &HeaderModifier{Set: []Header{{Name: "x", Value: "a\r\nb"}}}}}
		}, "routes[0].filters[0].responseHeaderModifier.set[0].value", "line breaks"},
		{"replace prefix needs prefix matches", func(c *Config) {
			c.Routes[0].Matches[0].Path.Type = "Exact"
			c.Routes[0].Filters = []Filter{{URLRewrite: &URLRewrite{Path: &PathModifier{Type: "ReplacePrefixMatch", ReplacePrefixMatch: "/"}}}}
		}, "routes[0].filters[0].urlRewrite.path.type", "every match of the route to be a PathPrefix"},
		{"path modifier field mismatch", func(c *Config) {
			c.Routes[0].Filters = []Filter{{URLRewrite: &URLRewrite{Path: &PathModifier{Type: "ReplaceFullPath", ReplacePrefixMatch: "/"}}}}
		}, "routes[0].filters[0].urlRewrite.path", "remove the other"},
		{"session affinity both", func(c *Config) {
			c.Routes[0].SessionAffinity = &SessionAffinity{Header: "a", Cookie: "b"}
		}, "routes[0].sessionAffinity", "exactly one of header or cookie"},
		{"backendRequest beyond request", func(c *Config) {
			c.Routes[0].Timeouts = &Timeouts{Request: Duration(1e9), BackendRequest: Duration(2e9)}
		}, "routes[0].timeouts.backendRequest", "can never fire"},
		{"negative duration in code", func(c *Config) { c.Routes[0].Timeouts = &Timeouts{Idle: -1} }, "routes[0].timeouts.idle", "negative"},
		{"retry code", func(c *Config) { c.Routes[0].Retry = &Retry{Codes: []int{5030}} }, "routes[0].retry.codes[0]", "not an HTTP status code"},
		{"retry budget", func(c *Config) { c.Routes[0].Retry = &Retry{BudgetPercent: 150} }, "routes[0].retry.budgetPercent", "between 0 and 100"},
		{"pool without endpoints", func(c *Config) { c.Pools[0].Endpoints = nil }, "pools[0].endpoints", "endpoints: [host:port"},
		{"pool with both", func(c *Config) { c.Pools[0].DNS = "vllm:8000" }, "pools[0].dns", "not both"},
		{"pool dns", func(c *Config) { c.Pools[0].Endpoints = nil; c.Pools[0].DNS = "vllm.internal:8000" }, "", ""},
		{"bad dns", func(c *Config) { c.Pools[0].Endpoints = nil; c.Pools[0].DNS = "vllm.internal" }, "pools[0].dns", "not host:port"},
		{"endpoint port 0", func(c *Config) { c.Pools[0].Endpoints = []string{"127.0.0.1:0"} }, "pools[0].endpoints[0]", "1 to 65535"},
		{"duplicate endpoint", func(c *Config) { c.Pools[0].Endpoints = []string{"a:1", "a:1"} }, "pools[0].endpoints[1]", "listed twice"},
		{"pool protocol", func(c *Config) { c.Pools[0].Protocol = "grpc" }, "pools[0].protocol", "unknown protocol"},
		{"h2 needs tls", func(c *Config) { c.Pools[0].Protocol = "h2" }, "pools[0].protocol", "add tls, or use h2c"},
		{"h2c with tls", func(c *Config) { c.Pools[0].Protocol = "h2c"; c.Pools[0].TLS = &UpstreamTLS{} }, "pools[0].protocol", "use h2"},
		{"balancer", func(c *Config) { c.Pools[0].Balancer = "roundrobin" }, "pools[0].balancer", `did you mean "round-robin"?`},
		{"spiffeID without identity", func(c *Config) { c.Pools[0].TLS = &UpstreamTLS{SPIFFEID: "spiffe://example.org/x"} }, "pools[0].tls", "needs an identity section"},
		{"spiffeID scheme", func(c *Config) {
			c.Identity = &Identity{}
			c.Pools[0].TLS = &UpstreamTLS{SPIFFEID: "example.org/x"}
		}, "pools[0].tls.spiffeID", "spiffe://trust-domain/path"},
		{"spiffeID and trustDomain", func(c *Config) {
			c.Identity = &Identity{}
			c.Pools[0].TLS = &UpstreamTLS{SPIFFEID: "spiffe://example.org/x", TrustDomain: "example.org"}
		}, "pools[0].tls", "not both"},
		{"trustDomain with scheme", func(c *Config) {
			c.Identity = &Identity{}
			c.Pools[0].TLS = &UpstreamTLS{TrustDomain: "spiffe://example.org"}
		}, "pools[0].tls.trustDomain", "just the name"},
		{"spiffe with caFile", func(c *Config) {
			c.Identity = &Identity{}
			c.Pools[0].TLS = &UpstreamTLS{TrustDomain: "example.org", CAFile: "ca.pem"}
		}, "pools[0].tls", "remove caFile"},
		{"model server", func(c *Config) { c.Pools[0].Inference = &Inference{ModelServer: "ollama"} }, "pools[0].inference.modelServer", "use one of vllm, sglang, tgi, llamacpp, triton"},
		{"picker", func(c *Config) { c.Pools[0].Inference = &Inference{Picker: "least"} }, "pools[0].inference.picker", `did you mean "least-request"?`},
		{"scorer", func(c *Config) {
			c.Pools[0].Inference = &Inference{Scorers: []ScorerWeight{{Name: "kv", Weight: 1}}}
		}, "pools[0].inference.scorers[0].name", "unknown scorer"},
		{"scorer weight", func(c *Config) {
			c.Pools[0].Inference = &Inference{Scorers: []ScorerWeight{{Name: "lora", Weight: -2}}}
		}, "pools[0].inference.scorers[0].weight", "0 or more"},
		{"load bound", func(c *Config) { c.Pools[0].Inference = &Inference{LoadBound: 0.5} }, "pools[0].inference.loadBound", "1 or more"},
		{"kv events port", func(c *Config) {
			c.Pools[0].Inference = &Inference{ModelServer: "vllm", Picker: "prefix-affinity", KVEvents: &KVEvents{Endpoint: "5557", ReplayEndpoint: "tcp://{host}:5558"}}
		}, "", ""},
		{"kv events missing endpoint", func(c *Config) { c.Pools[0].Inference = &Inference{KVEvents: &KVEvents{}} }, "pools[0].inference.kvEvents.endpoint", "endpoint is required"},
		{"kv events fixed host", func(c *Config) {
			c.Pools[0].Inference = &Inference{KVEvents: &KVEvents{Endpoint: "tcp://10.0.0.1:5557"}}
		}, "pools[0].inference.kvEvents.endpoint", "names no {host}"},
		{"kv events not tcp", func(c *Config) {
			c.Pools[0].Inference = &Inference{KVEvents: &KVEvents{Endpoint: "5557", ReplayEndpoint: "ipc:///tmp/x"}}
		}, "pools[0].inference.kvEvents.replayEndpoint", "neither a port, a +N port offset nor a tcp:// URL"},
		{"kv events bad offset", func(c *Config) {
			c.Pools[0].Inference = &Inference{KVEvents: &KVEvents{Endpoint: "+0"}}
		}, "pools[0].inference.kvEvents.endpoint", "not a port offset"},
		{"kv events tokenize path", func(c *Config) {
			c.Pools[0].Inference = &Inference{KVEvents: &KVEvents{Endpoint: "5557", TokenizePath: "tokenize"}}
		}, "pools[0].inference.kvEvents.tokenizePath", `start with "/"`},
		{"metrics path", func(c *Config) { c.Pools[0].Inference = &Inference{MetricsPath: "metrics"} }, "pools[0].inference.metricsPath", `start with "/"`},
		{"negative block size", func(c *Config) { c.Pools[0].Inference = &Inference{BlockSize: -1} }, "pools[0].inference.blockSize", "positive"},
		{"objective twice", func(c *Config) {
			c.Pools[0].Inference = &Inference{Objectives: []Objective{{Name: "a"}, {Name: "a"}}}
		}, "pools[0].inference.objectives[1].name", "listed twice"},
		{"authz action", func(c *Config) {
			c.Authorization = []AuthorizationPolicy{{Name: "p", Action: "AUDIT"}}
		}, "authorization[0].action", "use one of ALLOW, DENY"},
		{"authz route", func(c *Config) {
			c.Authorization = []AuthorizationPolicy{{Name: "p", Action: "DENY", Routes: []string{"defualt"}}}
		}, "authorization[0].routes[0]", `did you mean "default"?`},
		{"authz pool", func(c *Config) {
			c.Authorization = []AuthorizationPolicy{{Name: "p", Action: "DENY", Pools: []string{"x"}}}
		}, "authorization[0].pools[0]", `no pool named "x"`},
		{"authz ip block", func(c *Config) {
			c.Authorization = []AuthorizationPolicy{{Name: "p", Action: "DENY", Rules: []AuthzRule{{From: []AuthzFrom{{IPBlocks: []string{"10.0.0.0/33"}}}}}}}
		}, "authorization[0].rules[0].from[0].ipBlocks[0]", "not an IP address or CIDR"},
		{"authz port", func(c *Config) {
			c.Authorization = []AuthorizationPolicy{{Name: "p", Action: "DENY", Rules: []AuthzRule{{To: []AuthzTo{{Ports: []string{"https"}}}}}}}
		}, "authorization[0].rules[0].to[0].ports[0]", "not a port"},
		{"authz condition", func(c *Config) {
			c.Authorization = []AuthorizationPolicy{{Name: "p", Action: "DENY", Rules: []AuthzRule{{When: []AuthzCondition{{Values: []string{"a"}}}}}}}
		}, "authorization[0].rules[0].when[0].key", "needs a key"},
		{"identity both", func(c *Config) {
			c.Identity = &Identity{WorkloadAPI: "unix:///a", Files: &IdentityFiles{Dir: "/b"}}
		}, "identity", "not both"},
		{"identity neither uses the environment", func(c *Config) { c.Identity = &Identity{} }, "", ""},
		{"identity files dir", func(c *Config) { c.Identity = &Identity{Files: &IdentityFiles{}} }, "identity.files.dir", "needs dir"},
		{"identity address", func(c *Config) { c.Identity = &Identity{WorkloadAPI: "/run/agent.sock"} }, "identity.workloadAPI", "unix:///"},
		{"limits", func(c *Config) { c.Limits.MaxBodyBytes = -1 }, "limits.maxBodyBytes", "positive"},
		{"access log any path", func(c *Config) { c.AccessLog.Path = "/var/log/kvgate/access.log" }, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := quick(t)
			tc.mutate(c)
			err := Validate(c)
			if tc.path == "" {
				if err != nil {
					t.Fatalf("want valid, got:\n%v", err)
				}
				return
			}
			var es *Errors
			if !errors.As(err, &es) {
				t.Fatalf("Validate = %v, want *Errors", err)
			}
			for _, e := range *es {
				if e.Path == tc.path && strings.Contains(e.Msg, tc.contains) {
					if e.File != "quickstart.yaml" || e.Line == 0 {
						t.Errorf("problem has no position: %+v", e)
					}
					return
				}
			}
			t.Fatalf("want %s: ...%s..., got:\n%v", tc.path, tc.contains, err)
		})
	}
}

func TestValidateWithoutPositions(t *testing.T) {
	c := &Config{Routes: []Route{{Name: "r", Backends: []Backend{{Pool: "p"}}}}}
	Default(c)
	err := Validate(c)
	var es *Errors
	if !errors.As(err, &es) || len(*es) != 2 {
		t.Fatalf("Validate = %v, want 2 problems", err)
	}
	for _, e := range *es {
		if e.File != "" || e.Line != 0 || e.Column != 0 {
			t.Errorf("a configuration built in code has no positions, got %+v", e)
		}
	}
	if got := (*es)[0].Error(); got != "listeners: at least one listener is required: add listeners: [{name: plain, address: 127.0.0.1:8080}]" {
		t.Errorf("Error() = %q", got)
	}
	if Validate(nil) == nil {
		t.Error("Validate(nil) = nil")
	}
}

// TestValidateReportsEverything checks that problems in different places are
// all reported, not only the first.
func TestValidateReportsEverything(t *testing.T) {
	c := quick(t)
	c.Listeners[0].Protocols = []string{"http9"}
	c.Routes[0].Backends[0].Pool = "nope"
	c.Pools[0].Balancer = "fastest"
	var es *Errors
	if !errors.As(Validate(c), &es) || len(*es) != 3 {
		t.Fatalf("want 3 problems, got %v", es)
	}
	for i := 1; i < len(*es); i++ {
		if (*es)[i-1].Line > (*es)[i].Line {
			t.Errorf("problems are not in file order: %v", es)
		}
	}
}

// Balancer, picker and scorer names are package pick's registry: every name
// validation accepts builds a pick.Pool, and every name pick registers
// passes validation.
func TestPickNamesAreTheRegistry(t *testing.T) {
	valid := func(t *testing.T, mutate func(c *Config)) {
		t.Helper()
		c := quick(t)
		mutate(c)
		Default(c)
		if err := Validate(c); err != nil {
			t.Fatalf("rejected:\n%v", err)
		}
	}
	builds := func(t *testing.T, o pick.Options) {
		t.Helper()
		if _, err := pick.NewPool(o); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range pick.BalancerNames() {
		t.Run("balancer "+name, func(t *testing.T) {
			valid(t, func(c *Config) { c.Pools[0].Balancer = name })
			builds(t, pick.Options{Balancer: name})
		})
	}
	for _, name := range pick.PresetNames() {
		t.Run("picker "+name, func(t *testing.T) {
			valid(t, func(c *Config) { c.Pools[0].Inference = &Inference{Picker: name} })
			builds(t, pick.Options{Preset: name, Balancer: DefaultBalancer})
		})
	}
	for _, name := range pick.Names(pick.KindScorer) {
		t.Run("scorer "+name, func(t *testing.T) {
			valid(t, func(c *Config) { c.Pools[0].Inference = &Inference{Scorers: []ScorerWeight{{Name: name, Weight: 1}}} })
			builds(t, pick.Options{Preset: DefaultPicker, Balancer: DefaultBalancer, Scorers: []pick.ScorerWeight{{Name: name, Weight: 1}}})
		})
	}
	// A preset that cannot balance a plain pool is not a balancer.
	for _, pr := range pick.Presets() {
		if pr.Balancer {
			continue
		}
		c := quick(t)
		c.Pools[0].Balancer = pr.Name
		if err := Validate(c); err == nil || !strings.Contains(err.Error(), "unknown balancer") {
			t.Errorf("balancer %s: %v, want unknown balancer", pr.Name, err)
		}
	}
	// The default names are declared here, the names themselves in pick's
	// registry: each default must name a registered preset of its kind.
	if !slices.Contains(pick.BalancerNames(), DefaultBalancer) {
		t.Errorf("DefaultBalancer %q is not a balancer registered in package pick (%v)", DefaultBalancer, pick.BalancerNames())
	}
	if !slices.Contains(pick.PresetNames(), DefaultPicker) {
		t.Errorf("DefaultPicker %q is not a preset registered in package pick (%v)", DefaultPicker, pick.PresetNames())
	}
}

func TestKVEventsAddress(t *testing.T) {
	for _, c := range []struct{ form, ep, want string }{
		{"5557", "10.0.0.5:8000", "tcp://10.0.0.5:5557"},
		{"tcp://{host}:6000", "vllm-0.internal:8000", "tcp://vllm-0.internal:6000"},
		{"5557", "[::1]:8000", "tcp://[::1]:5557"},
		{"+1000", "127.0.0.1:8001", "tcp://127.0.0.1:9001"},
		{"", "10.0.0.5:8000", ""},
	} {
		if got := KVEventsAddress(c.form, c.ep); got != c.want {
			t.Errorf("KVEventsAddress(%q, %q) = %q, want %q", c.form, c.ep, got, c.want)
		}
	}
}
