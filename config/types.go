package config

// Config is one whole kvgate configuration: what `kvgate run` serves and what
// `kvgate validate` checks. Field names mirror Gateway API and Istio so that
// cluster manifests map onto it one to one (examples/full.yaml shows every key).
type Config struct {
	// Admin is the listener for /livez, /readyz, /metrics, /reload and inspection.
	Admin Admin `yaml:"admin"`
	// Listeners accept client connections. At least one is required.
	Listeners []Listener `yaml:"listeners"`
	// Identity is the SPIFFE workload identity; nil means none.
	Identity *Identity `yaml:"identity,omitempty"`
	// Routes map requests to pools, first by precedence (Gateway API rules).
	Routes []Route `yaml:"routes"`
	// Pools are named groups of upstream endpoints.
	Pools []Pool `yaml:"pools"`
	// Authorization policies, with Istio AuthorizationPolicy semantics.
	Authorization []AuthorizationPolicy `yaml:"authorization,omitempty"`
	// Limits bound what one client may send; defaults in defaults.go.
	Limits Limits `yaml:"limits"`
	// Paths says how request paths are normalised before routing and authorization.
	Paths Paths `yaml:"paths"`
	// AccessLog says where JSON access log lines go.
	AccessLog AccessLog `yaml:"accessLog"`
	// Tracing exports OpenTelemetry traces; off unless tracing.endpoint is set.
	Tracing Tracing `yaml:"tracing"`
	// DrainTimeout is how long in-flight requests may run after SIGTERM. Default 30s.
	DrainTimeout Duration `yaml:"drainTimeout"`

	// Source is the file the configuration was read from ("" for embedded defaults).
	Source string `yaml:"-"`

	// pos records where each key path was written (see Position); filled by
	// Parse, nil for configurations built in code.
	pos positions
}

// Admin is the administrative listener. It is never public by default.
type Admin struct {
	// Address to listen on; default 127.0.0.1:9901. "off" disables the admin listener.
	Address string `yaml:"address"`
	// Pprof serves Go's net/http/pprof profiles under /debug/pprof/ on the
	// admin listener; default false. Profiles show memory contents and cost
	// CPU while they run: turn it on where the admin listener is private.
	// Read at start; a reload does not change it.
	Pprof bool `yaml:"pprof,omitempty"`
	// TokenFile holds a bearer token that the status page, the /debug
	// endpoints and POST /reload require (Authorization: Bearer TOKEN).
	// Bound beyond loopback without it, those answer only callers on the
	// machine itself (port-forwards) and 403 to others; /livez, /readyz and
	// /metrics never need it.
	TokenFile string `yaml:"tokenFile,omitempty"`
}

// Listener is one client-facing socket.
type Listener struct {
	Name    string `yaml:"name"`
	Address string `yaml:"address"`
	// Protocols served: http1, http2, http3. Default [http1, http2].
	// http2 on a plaintext listener means prior-knowledge h2c; http3 needs tls.
	Protocols []string     `yaml:"protocols,omitempty"`
	TLS       *ListenerTLS `yaml:"tls,omitempty"`
	// TrustedProxies are CIDRs (or bare IPs) whose Forwarded / X-Forwarded-* headers are kept.
	// From anyone else those headers are replaced.
	TrustedProxies []string `yaml:"trustedProxies,omitempty"`
	// TrustForwardedClientCert keeps a client-supplied x-forwarded-client-cert header.
	// Off by default: the header is stripped and set from the verified peer only.
	TrustForwardedClientCert bool `yaml:"trustForwardedClientCert,omitempty"`
}

// ListenerTLS terminates TLS on a listener.
type ListenerTLS struct {
	// CertFile and KeyFile are PEM files, reloaded when they change.
	CertFile string `yaml:"certFile,omitempty"`
	KeyFile  string `yaml:"keyFile,omitempty"`
	// SPIFFE serves the workload X.509 SVID from `identity` instead of files.
	SPIFFE bool `yaml:"spiffe,omitempty"`
	// ClientAuth: none (default) | request | require.
	ClientAuth string `yaml:"clientAuth,omitempty"`
	// ClientCAFile verifies client certificates when SPIFFE is not used.
	ClientCAFile string `yaml:"clientCAFile,omitempty"`
	// EnableEarlyData allows HTTP/3 0-RTT. Off by default: replayed POSTs are unsafe.
	EnableEarlyData bool `yaml:"enableEarlyData,omitempty"`
}

// Identity selects where the SPIFFE workload identity comes from.
type Identity struct {
	// WorkloadAPI is the SPIRE agent socket, e.g. unix:///run/spire/sockets/agent.sock.
	// Default: $SPIFFE_ENDPOINT_SOCKET.
	WorkloadAPI string `yaml:"workloadAPI,omitempty"`
	// Files reads SVIDs written by `spire-agent api fetch x509 -write` or spiffe-helper.
	Files *IdentityFiles `yaml:"files,omitempty"`
	// StartupTimeout bounds the wait for the first SVID. Default 30s.
	StartupTimeout Duration `yaml:"startupTimeout,omitempty"`
}

// IdentityFiles is a directory holding svid.0.pem, svid.0.key, bundle.0.pem.
type IdentityFiles struct {
	Dir string `yaml:"dir"`
}

// Route is one Gateway API HTTPRoute rule, flattened.
type Route struct {
	Name string `yaml:"name"`
	// Listeners this route is attached to; default every listener.
	Listeners []string `yaml:"listeners,omitempty"`
	// Hostnames matched exactly or by "*." wildcard; default any.
	Hostnames []string `yaml:"hostnames,omitempty"`
	// Matches are ORed; the conditions inside one match are ANDed. Empty means "PathPrefix /".
	Matches []Match `yaml:"matches,omitempty"`
	// Filters applied to every request of this route, in order.
	Filters []Filter `yaml:"filters,omitempty"`
	// Backends split traffic by weight.
	Backends []Backend `yaml:"backends"`
	// SessionAffinity keeps one key on one weighted backend.
	SessionAffinity *SessionAffinity `yaml:"sessionAffinity,omitempty"`
	Timeouts        *Timeouts        `yaml:"timeouts,omitempty"`
	Retry           *Retry           `yaml:"retry,omitempty"`
	// Priority of this route's requests when inference pools are saturated;
	// negative priorities are shed first (429). Default 0.
	Priority *int `yaml:"priority,omitempty"`
}

// Match is one Gateway API HTTPRouteMatch plus an OpenAI model match.
type Match struct {
	Path        *PathMatch    `yaml:"path,omitempty"`
	Method      string        `yaml:"method,omitempty"`
	Headers     []HeaderMatch `yaml:"headers,omitempty"`
	QueryParams []HeaderMatch `yaml:"queryParams,omitempty"`
	// Model tests the `model` field of an OpenAI-shaped JSON body.
	Model *StringMatch `yaml:"model,omitempty"`
}

// PathMatch: type Exact | PathPrefix (default) | RegularExpression.
type PathMatch struct {
	Type  string `yaml:"type,omitempty"`
	Value string `yaml:"value"`
}

// HeaderMatch: type Exact (default) | RegularExpression. Header names are case-insensitive.
type HeaderMatch struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
	Type  string `yaml:"type,omitempty"`
}

// StringMatch: type Exact (default) | RegularExpression.
type StringMatch struct {
	Value string `yaml:"value"`
	Type  string `yaml:"type,omitempty"`
}

// Filter is a Gateway API HTTPRouteFilter. Type may be omitted when exactly one
// of the filter fields is set.
type Filter struct {
	Type                   string           `yaml:"type,omitempty"`
	RequestHeaderModifier  *HeaderModifier  `yaml:"requestHeaderModifier,omitempty"`
	ResponseHeaderModifier *HeaderModifier  `yaml:"responseHeaderModifier,omitempty"`
	URLRewrite             *URLRewrite      `yaml:"urlRewrite,omitempty"`
	RequestRedirect        *RequestRedirect `yaml:"requestRedirect,omitempty"`
	RequestMirror          *RequestMirror   `yaml:"requestMirror,omitempty"`
}

// HeaderModifier sets, adds and removes headers.
type HeaderModifier struct {
	Set    []Header `yaml:"set,omitempty"`
	Add    []Header `yaml:"add,omitempty"`
	Remove []string `yaml:"remove,omitempty"`
}

// Header is one name/value pair.
type Header struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

// URLRewrite rewrites the host and path sent upstream.
type URLRewrite struct {
	Hostname string        `yaml:"hostname,omitempty"`
	Path     *PathModifier `yaml:"path,omitempty"`
}

// PathModifier: type ReplaceFullPath | ReplacePrefixMatch.
type PathModifier struct {
	Type               string `yaml:"type"`
	ReplaceFullPath    string `yaml:"replaceFullPath,omitempty"`
	ReplacePrefixMatch string `yaml:"replacePrefixMatch,omitempty"`
}

// RequestRedirect answers with a redirect instead of proxying.
type RequestRedirect struct {
	Scheme     string        `yaml:"scheme,omitempty"`
	Hostname   string        `yaml:"hostname,omitempty"`
	Path       *PathModifier `yaml:"path,omitempty"`
	Port       int           `yaml:"port,omitempty"`
	StatusCode int           `yaml:"statusCode,omitempty"` // 301 | 302 (default) | 303 | 307 | 308
}

// RequestMirror sends a fire-and-forget copy of a share of requests to a pool.
type RequestMirror struct {
	Pool    string  `yaml:"pool"`
	Percent float64 `yaml:"percent,omitempty"` // default 100
}

// Backend is one weighted destination of a route.
type Backend struct {
	Pool string `yaml:"pool"`
	// Weight is this backend's share: weight / sum of weights. Default 1; 0 sends nothing.
	Weight  *int     `yaml:"weight,omitempty"`
	Filters []Filter `yaml:"filters,omitempty"`
	// ModelRewrite rewrites the body's `model` to one of these targets by weight.
	ModelRewrite []ModelTarget `yaml:"modelRewrite,omitempty"`
}

// ModelTarget is one weighted model name.
type ModelTarget struct {
	Model  string `yaml:"model"`
	Weight int    `yaml:"weight,omitempty"`
}

// SessionAffinity names where the sticky key comes from: a header or a cookie.
type SessionAffinity struct {
	Header string `yaml:"header,omitempty"`
	Cookie string `yaml:"cookie,omitempty"`
}

// Timeouts: 0 disables one.
type Timeouts struct {
	// Request bounds the whole exchange, retries included.
	Request Duration `yaml:"request,omitempty"`
	// BackendRequest bounds one try until response headers arrive.
	BackendRequest Duration `yaml:"backendRequest,omitempty"`
	// Idle bounds the silence between two bytes of the response stream,
	// from the response headers on; past it the stream is cut. It can only
	// shorten limits.streamIdleTimeout, which bounds every upstream
	// connection.
	Idle Duration `yaml:"idle,omitempty"`
}

// Retry says when a failed try is repeated. A retry happens only before any
// response byte reached the client and only when the body can be replayed.
type Retry struct {
	Attempts        int      `yaml:"attempts"`
	Codes           []int    `yaml:"codes,omitempty"`
	ConnectFailures *bool    `yaml:"connectFailures,omitempty"` // default true
	Backoff         Duration `yaml:"backoff,omitempty"`
	// BudgetPercent caps retries as a share of requests (default 20).
	BudgetPercent float64 `yaml:"budgetPercent,omitempty"`
}

// Pool is a named group of upstream endpoints.
type Pool struct {
	Name string `yaml:"name"`
	// Endpoints are host:port addresses.
	Endpoints []string `yaml:"endpoints,omitempty"`
	// DNS is host:port re-resolved every ResolveInterval; every address becomes an endpoint.
	DNS             string   `yaml:"dns,omitempty"`
	ResolveInterval Duration `yaml:"resolveInterval,omitempty"`
	// Protocol to the upstream: http1 (default) | h2c | h2.
	Protocol string `yaml:"protocol,omitempty"`
	// Balancer picks the endpoints of a plain pool, and of retries and
	// mirrors in any pool: a balancer preset of package pick
	// (pick.BalancerNames); default DefaultBalancer, least request by power
	// of two choices.
	Balancer string       `yaml:"balancer,omitempty"`
	TLS      *UpstreamTLS `yaml:"tls,omitempty"`
	// DialTimeout bounds connecting; default 5s.
	DialTimeout Duration `yaml:"dialTimeout,omitempty"`
	// IdleConnTimeout closes pooled connections unused this long; default 90s.
	IdleConnTimeout Duration `yaml:"idleConnTimeout,omitempty"`
	// MaxConnsPerEndpoint caps connections to one endpoint; default 0 (no cap).
	MaxConnsPerEndpoint int `yaml:"maxConnsPerEndpoint,omitempty"`
	// Inference makes this an inference pool with KV-cache-aware picking.
	Inference *Inference `yaml:"inference,omitempty"`

	// Discovered marks a pool whose endpoints a discovery source keeps up to
	// date while kvgate runs (kvgate run --kubernetes: the ready endpoints
	// of a Service or InferencePool). Its Endpoints may then be empty: the
	// pool answers 503 until one is ready. A file cannot set it.
	Discovered bool `yaml:"-"`
}

// UpstreamTLS dials upstreams over TLS.
type UpstreamTLS struct {
	// SPIFFEID is the exact server identity required (dials with the workload SVID).
	SPIFFEID string `yaml:"spiffeID,omitempty"`
	// TrustDomain accepts any server identity of this trust domain.
	TrustDomain string `yaml:"trustDomain,omitempty"`
	// CAFile and ServerName are for plain (non-SPIFFE) TLS upstreams.
	CAFile     string `yaml:"caFile,omitempty"`
	ServerName string `yaml:"serverName,omitempty"`
	// CertFile and KeyFile present a client certificate to plain TLS upstreams.
	CertFile string `yaml:"certFile,omitempty"`
	KeyFile  string `yaml:"keyFile,omitempty"`
	// InsecureSkipVerify is for tests only.
	InsecureSkipVerify bool `yaml:"insecureSkipVerify,omitempty"`
}

// Inference configures KV-cache-aware endpoint picking for a pool.
type Inference struct {
	// ModelServer selects metric names: vllm (default) | sglang | tgi | llamacpp | triton.
	ModelServer string `yaml:"modelServer,omitempty"`
	// Picker names the preset that picks each request's endpoint: a preset of
	// package pick (pick.PresetNames, each with its one-line doc in
	// pick.Presets); default DefaultPicker.
	Picker string `yaml:"picker,omitempty"`
	// Scorers override the preset's weighted scorers; names are the scorers
	// of package pick's registry (pick.Names(pick.KindScorer)).
	Scorers []ScorerWeight `yaml:"scorers,omitempty"`
	// SessionHeader is hashed by the session picker; default x-session-id.
	SessionHeader string `yaml:"sessionHeader,omitempty"`
	// BlockSize is characters per hashed block; default 64 (about 16 tokens).
	BlockSize int `yaml:"blockSize,omitempty"`
	// CacheBlocks sizes each endpoint's prefix LRU when the server does not report num_gpu_blocks.
	CacheBlocks int `yaml:"cacheBlocks,omitempty"`
	// MaxPromptBytes is how much of a body is read for the prompt; default 128KiB.
	MaxPromptBytes int `yaml:"maxPromptBytes,omitempty"`
	// LoadBound is the bounded-load factor over the mean; default 1.25. An
	// endpoint takes a request while its share of the pool's last 256 picks
	// stays within LoadBound × the mean share (stretched up to 2× by how much
	// of the prompt it caches) and its in-flight requests within LoadBound ×
	// the mean or below queueThreshold.
	LoadBound float64 `yaml:"loadBound,omitempty"`
	// MetricsPath is scraped on every endpoint; default /metrics.
	MetricsPath string `yaml:"metricsPath,omitempty"`
	// ScrapeInterval; default 50ms. 0 keeps the default; "off" is not supported.
	ScrapeInterval Duration `yaml:"scrapeInterval,omitempty"`
	// QueueThreshold and KVThreshold mark an endpoint saturated; defaults 5 and 0.8.
	QueueThreshold int     `yaml:"queueThreshold,omitempty"`
	KVThreshold    float64 `yaml:"kvThreshold,omitempty"`
	// QueueSize and QueueTimeout bound the in-proxy wait when every endpoint is saturated.
	QueueSize    int      `yaml:"queueSize,omitempty"`
	QueueTimeout Duration `yaml:"queueTimeout,omitempty"`
	// EndpointHeader adds x-kvgate-endpoint to responses (debugging).
	EndpointHeader bool `yaml:"endpointHeader,omitempty"`
	// Objectives map x-gateway-inference-objective values to priorities.
	Objectives []Objective `yaml:"objectives,omitempty"`
	// KVEvents turns on precise mode: kvgate subscribes to every endpoint's
	// KV-cache events (vLLM's --kv-events-config) and tokenizes prompts on
	// the model server, so prefix scoring reads what each endpoint really
	// caches. Absent: the approximate prefix index alone.
	KVEvents *KVEvents `yaml:"kvEvents,omitempty"`
}

// KVEvents configures precise mode for an inference pool. Endpoint forms:
// a port ("5557": tcp://HOST:5557, HOST being the endpoint's host), an
// offset from the endpoint's own port ("+1000": an endpoint on :8000
// publishes on :9000; for several servers on one host), or a URL template
// with {host} ("tcp://{host}:5557").
type KVEvents struct {
	// Endpoint is each endpoint's KV event publisher (vLLM's
	// kv_events_config.endpoint as seen from kvgate). Required.
	Endpoint string `yaml:"endpoint"`
	// ReplayEndpoint is each endpoint's replay socket (vLLM's
	// replay_endpoint); the same forms; absent: gaps are not replayed, and
	// a gap clears the endpoint's precise state.
	ReplayEndpoint string `yaml:"replayEndpoint,omitempty"`
	// Topic is the subscription (vLLM's kv_events_config.topic); default "",
	// every message.
	Topic string `yaml:"topic,omitempty"`
	// TokenizePath is the model server's tokenizer endpoint; default /tokenize.
	TokenizePath string `yaml:"tokenizePath,omitempty"`
	// TokenizeTimeout bounds one tokenize call; past it the request is
	// picked with the approximate index. Default 100ms.
	TokenizeTimeout Duration `yaml:"tokenizeTimeout,omitempty"`
	// TokenizeCache is how many prompts' token ids are kept (LRU by prompt
	// hash); default 4096.
	TokenizeCache int `yaml:"tokenizeCache,omitempty"`
	// StaleAfter: an endpoint sent a request this long ago without any event
	// since is stale, and picked with the approximate index until its events
	// resume. Default 5s.
	StaleAfter Duration `yaml:"staleAfter,omitempty"`
	// MaxBlocks bounds each endpoint's precise state, in blocks; default 262144.
	MaxBlocks int `yaml:"maxBlocks,omitempty"`
	// ReplayTimeout bounds one replay request; default 2s.
	ReplayTimeout Duration `yaml:"replayTimeout,omitempty"`
}

// ScorerWeight names one scorer and its weight.
type ScorerWeight struct {
	Name   string  `yaml:"name"`
	Weight float64 `yaml:"weight"`
}

// Objective is an InferenceObjective: a name and a priority.
type Objective struct {
	Name     string `yaml:"name"`
	Priority int    `yaml:"priority"`
}

// AuthorizationPolicy follows Istio semantics: DENY first; if any ALLOW policy
// applies to a route, a request matching none of them is denied.
type AuthorizationPolicy struct {
	Name   string `yaml:"name"`
	Action string `yaml:"action"` // ALLOW | DENY
	// Routes this policy applies to; default every route.
	Routes []string `yaml:"routes,omitempty"`
	// Pools this policy applies to (from a workload selector); default every pool.
	Pools []string `yaml:"pools,omitempty"`
	// Rules: none matches nothing; an empty rule matches everything.
	Rules []AuthzRule `yaml:"rules,omitempty"`
}

// AuthzRule matches when every non-empty part matches.
type AuthzRule struct {
	From []AuthzFrom      `yaml:"from,omitempty"`
	To   []AuthzTo        `yaml:"to,omitempty"`
	When []AuthzCondition `yaml:"when,omitempty"`
}

// AuthzFrom is Istio's Source.
type AuthzFrom struct {
	Principals    []string `yaml:"principals,omitempty"`
	NotPrincipals []string `yaml:"notPrincipals,omitempty"`
	Namespaces    []string `yaml:"namespaces,omitempty"`
	NotNamespaces []string `yaml:"notNamespaces,omitempty"`
	IPBlocks      []string `yaml:"ipBlocks,omitempty"`
	NotIPBlocks   []string `yaml:"notIpBlocks,omitempty"`
}

// AuthzTo is Istio's Operation.
type AuthzTo struct {
	Hosts      []string `yaml:"hosts,omitempty"`
	NotHosts   []string `yaml:"notHosts,omitempty"`
	Methods    []string `yaml:"methods,omitempty"`
	NotMethods []string `yaml:"notMethods,omitempty"`
	Paths      []string `yaml:"paths,omitempty"`
	NotPaths   []string `yaml:"notPaths,omitempty"`
	Ports      []string `yaml:"ports,omitempty"`
	NotPorts   []string `yaml:"notPorts,omitempty"`
}

// AuthzCondition is Istio's Condition: key is request.headers[NAME],
// source.principal, source.ip, ...
type AuthzCondition struct {
	Key       string   `yaml:"key"`
	Values    []string `yaml:"values,omitempty"`
	NotValues []string `yaml:"notValues,omitempty"`
}

// Limits bound what a client may send. Each has a status code when exceeded.
type Limits struct {
	MaxHeaderBytes       int      `yaml:"maxHeaderBytes,omitempty"`       // 65536 → 431
	MaxHeaders           int      `yaml:"maxHeaders,omitempty"`           // 100 → 431
	MaxBodyBytes         int64    `yaml:"maxBodyBytes,omitempty"`         // 32 MiB → 413
	ReadHeaderTimeout    Duration `yaml:"readHeaderTimeout,omitempty"`    // 10s
	IdleTimeout          Duration `yaml:"idleTimeout,omitempty"`          // 120s keep-alive
	StreamIdleTimeout    Duration `yaml:"streamIdleTimeout,omitempty"`    // 300s between stream bytes
	MaxConcurrentStreams int      `yaml:"maxConcurrentStreams,omitempty"` // 100 per HTTP/2 connection
	MaxConnections       int      `yaml:"maxConnections,omitempty"`       // 10000 across listeners, TCP and QUIC
}

// Paths controls request path normalisation. kvgate normalises every request
// path once, before routing, and routing, authorization, redirects, rewrites,
// the access log, spans and the upstream request all see that one path:
// percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are decoded and
// other escapes get uppercase hex (RFC 3986 §6.2.2), a raw backslash becomes
// '/' (as in Envoy and Istio), "." and ".." segments are removed, encoded
// ones too (RFC 3986 §5.2.4), and a target with %00, a malformed escape, a
// control byte or a fragment (#) is refused with 400. The query is not changed.
type Paths struct {
	// MergeSlashes turns each run of '/' into one ("//a///b" is "/a/b").
	// Default true. Off, "//admin" is a different path from "/admin" and
	// passes a policy written for /admin.
	MergeSlashes *bool `yaml:"mergeSlashes,omitempty"`
	// EscapedSlashes says what happens to %2F and %5C (an encoded '/' or '\'):
	// reject (default: 400), decode (they become '/' and the path is
	// normalised again around them) or keep (forwarded unchanged and matched
	// as ordinary characters of their segment; a backend that decodes %2F then
	// sees a different path than routing and authorization did).
	EscapedSlashes string `yaml:"escapedSlashes,omitempty"`
}

// AccessLog: path is stdout (default) | stderr | off | a file path.
type AccessLog struct {
	Path string `yaml:"path,omitempty"`
}

// Tracing sends one OpenTelemetry server span per request to an OTLP/HTTP
// collector and propagates W3C traceparent / tracestate upstream. It is read
// when the proxy starts; a reload does not change it.
type Tracing struct {
	// Endpoint is the collector's OTLP/HTTP base URL, e.g.
	// http://127.0.0.1:4318 (/v1/traces is appended when the URL has no
	// path). Empty (the default) disables tracing: the request path then does
	// no tracing work at all.
	Endpoint string `yaml:"endpoint,omitempty"`
	// SampleRatio is the fraction of new traces recorded, 0 to 1; default
	// 0.01. A request whose traceparent is sampled is always recorded and one
	// whose traceparent is not sampled never is (parent-based sampling);
	// 0 records only those continued from a sampled caller.
	SampleRatio *float64 `yaml:"sampleRatio,omitempty"`
	// ServiceName is the service.name resource attribute; default kvgate.
	ServiceName string `yaml:"serviceName,omitempty"`
	// MetricsInterval, above 0, also pushes the families of /metrics to the
	// collector over OTLP/HTTP (endpoint + /v1/metrics) at this interval,
	// and once more at shutdown; default 0: no push (scrape /metrics).
	// Needs endpoint; sampleRatio 0 pushes metrics while recording only
	// the traces sampled callers started.
	MetricsInterval Duration `yaml:"metricsInterval,omitempty"`
}
