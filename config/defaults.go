package config

import "time"

// The defaults, in one place. Default applies them; docs and the proxy may
// refer to them by name. A zero (or absent) value in a configuration means
// "use the default", except where a field's comment says 0 disables it.
//
// The packages that act on these settings (pick, cache, openai, router,
// mtls) have no defaults of their own: they take the values config.Default
// filled in, and document what they do with a value outside its range.
// Names of presets (DefaultPicker, DefaultBalancer) are package pick's
// registry's; a test checks that these two are registered there.
const (
	DefaultAdminAddress = "127.0.0.1:9901" // admin.address: loopback, never public by default

	DefaultMaxHeaderBytes       = 64 << 10 // limits.maxHeaderBytes: 65536, then 431
	DefaultMaxHeaders           = 100      // limits.maxHeaders, then 431
	DefaultMaxBodyBytes         = 32 << 20 // limits.maxBodyBytes: 32 MiB, then 413
	DefaultReadHeaderTimeout    = 10 * time.Second
	DefaultIdleTimeout          = 120 * time.Second // keep-alive between requests
	DefaultStreamIdleTimeout    = 300 * time.Second // between two bytes of one stream
	DefaultMaxConcurrentStreams = 100               // per HTTP/2 or HTTP/3 connection
	DefaultMaxConnections       = 10000             // across all listeners
	DefaultDrainTimeout         = 30 * time.Second
	DefaultAccessLogPath        = "stdout"
	DefaultTraceSampleRatio     = 0.01 // tracing.sampleRatio: 1 in 100 new traces
	DefaultTraceServiceName     = "kvgate"
	DefaultMergeSlashes         = true     // paths.mergeSlashes
	DefaultEscapedSlashes       = "reject" // paths.escapedSlashes: %2F and %5C get 400

	DefaultPoolProtocol    = "http1"
	DefaultBalancer        = "least-request" // least request by power of two choices
	DefaultDialTimeout     = 5 * time.Second
	DefaultIdleConnTimeout = 90 * time.Second
	DefaultResolveInterval = 5 * time.Second
	DefaultBackendWeight   = 1

	DefaultPathMatchType  = "PathPrefix" // also the match used when a route has none: PathPrefix /
	DefaultValueMatchType = "Exact"      // headers, queryParams and model
	DefaultClientAuth     = "none"
	DefaultRedirectStatus = 302
	DefaultMirrorPercent  = 100

	DefaultModelServer    = "vllm"
	DefaultPicker         = "latency"
	DefaultBlockSize      = 64        // characters, about 16 tokens: vLLM's default KV block
	DefaultCacheBlocks    = 16384     // per endpoint until it reports num_gpu_blocks: 256k tokens, about 1 MiB of index
	DefaultMaxPromptBytes = 128 << 10 // 131072; also the bound on reading a body for model-match rules
	DefaultLoadBound      = 1.25      // no endpoint takes a new prefix above 1.25 × the mean load
	DefaultMetricsPath    = "/metrics"
	DefaultScrapeInterval = 50 * time.Millisecond // as the Inference Extension polls
	DefaultQueueThreshold = 5
	DefaultKVThreshold    = 0.8
	DefaultQueueSize      = 1024
	DefaultQueueTimeout   = 30 * time.Second
	DefaultSessionHeader  = "x-session-id"

	DefaultTokenizePath       = "/tokenize"            // inference.kvEvents.tokenizePath: vLLM's
	DefaultTokenizeTimeout    = 100 * time.Millisecond // a tokenize call past it picks approximately
	DefaultTokenizeCache      = 4096                   // prompts whose token ids are kept
	DefaultKVEventsStaleAfter = 5 * time.Second        // a pick unanswered by any event this long: stale
	DefaultKVEventsMaxBlocks  = 262144                 // per endpoint: 4M tokens of 16-token blocks, about 25 MiB
	DefaultKVReplayTimeout    = 2 * time.Second
	DefaultKVProbeAfter       = 10 * time.Second       // a silent stream is checked over the replay socket
	DefaultKVMinBackoff       = 100 * time.Millisecond // reconnection backoff, doubling up to the max
	DefaultKVMaxBackoff       = 5 * time.Second

	DefaultRetryBudgetPercent   = 20
	DefaultRetryBackoff         = 25 * time.Millisecond
	DefaultRetryConnectFailures = true             // retry.connectFailures
	DefaultStartupTimeout       = 30 * time.Second // identity.startupTimeout
)

// DefaultProtocols is what a listener serves when it names none: HTTP/1.1 and
// HTTP/2 (h2c with prior knowledge on plaintext). Callers must not modify it.
var DefaultProtocols = []string{"http1", "http2"}

// Default fills every unset field of c with its default. It is idempotent,
// never overwrites a value that was set, and never reads the environment or
// the file system. A nil c is a no-op.
//
// Two zero values cannot be told apart from "absent" and so take the default:
// requestMirror.percent 0 (remove the filter instead) and the inference
// numbers (blockSize, loadBound, ...), for which 0 is never useful.
func Default(c *Config) {
	if c == nil {
		return
	}
	str(&c.Admin.Address, DefaultAdminAddress)
	str(&c.AccessLog.Path, DefaultAccessLogPath)
	str(&c.Tracing.ServiceName, DefaultTraceServiceName)
	if c.Tracing.SampleRatio == nil {
		r := DefaultTraceSampleRatio
		c.Tracing.SampleRatio = &r
	}
	dur(&c.DrainTimeout, DefaultDrainTimeout)
	defaultLimits(&c.Limits)
	if c.Paths.MergeSlashes == nil {
		m := DefaultMergeSlashes
		c.Paths.MergeSlashes = &m
	}
	str(&c.Paths.EscapedSlashes, DefaultEscapedSlashes)
	if c.Identity != nil {
		dur(&c.Identity.StartupTimeout, DefaultStartupTimeout)
	}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if len(l.Protocols) == 0 {
			l.Protocols = append([]string(nil), DefaultProtocols...)
		}
		if l.TLS != nil {
			str(&l.TLS.ClientAuth, DefaultClientAuth)
		}
	}
	for i := range c.Routes {
		defaultRoute(&c.Routes[i])
	}
	for i := range c.Pools {
		defaultPool(&c.Pools[i])
	}
}

func defaultLimits(l *Limits) {
	num(&l.MaxHeaderBytes, DefaultMaxHeaderBytes)
	num(&l.MaxHeaders, DefaultMaxHeaders)
	num(&l.MaxBodyBytes, DefaultMaxBodyBytes)
	dur(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	dur(&l.IdleTimeout, DefaultIdleTimeout)
	dur(&l.StreamIdleTimeout, DefaultStreamIdleTimeout)
	num(&l.MaxConcurrentStreams, DefaultMaxConcurrentStreams)
	num(&l.MaxConnections, DefaultMaxConnections)
}

// defaultRoute: no matches means one PathPrefix "/"; a match without a path
// matches every path (Gateway API); backends weigh 1; retries retry connect
// failures within a 20% budget.
func defaultRoute(r *Route) {
	if len(r.Matches) == 0 {
		r.Matches = []Match{{Path: &PathMatch{Type: DefaultPathMatchType, Value: "/"}}}
	}
	for i := range r.Matches {
		m := &r.Matches[i]
		if m.Path == nil {
			m.Path = &PathMatch{Type: DefaultPathMatchType, Value: "/"}
		}
		str(&m.Path.Type, DefaultPathMatchType)
		for j := range m.Headers {
			str(&m.Headers[j].Type, DefaultValueMatchType)
		}
		for j := range m.QueryParams {
			str(&m.QueryParams[j].Type, DefaultValueMatchType)
		}
		if m.Model != nil {
			str(&m.Model.Type, DefaultValueMatchType)
		}
	}
	defaultFilters(r.Filters)
	for i := range r.Backends {
		b := &r.Backends[i]
		if b.Weight == nil {
			w := DefaultBackendWeight
			b.Weight = &w
		}
		defaultFilters(b.Filters)
	}
	if r.Retry != nil {
		if r.Retry.ConnectFailures == nil {
			t := DefaultRetryConnectFailures
			r.Retry.ConnectFailures = &t
		}
		num(&r.Retry.BudgetPercent, DefaultRetryBudgetPercent)
		dur(&r.Retry.Backoff, DefaultRetryBackoff)
	}
}

// defaultFilters names each filter's type after its one set field, defaults
// the redirect status to 302 and the mirror share to 100%.
func defaultFilters(fs []Filter) {
	for i := range fs {
		f := &fs[i]
		if set := f.setFields(); f.Type == "" && len(set) == 1 {
			f.Type = set[0]
		}
		if f.RequestRedirect != nil && f.RequestRedirect.StatusCode == 0 {
			f.RequestRedirect.StatusCode = DefaultRedirectStatus
		}
		if f.RequestMirror != nil {
			num(&f.RequestMirror.Percent, DefaultMirrorPercent)
		}
	}
}

// setFields returns the Gateway API type names of the filter fields that are set.
func (f *Filter) setFields() []string {
	var set []string
	if f.RequestHeaderModifier != nil {
		set = append(set, "RequestHeaderModifier")
	}
	if f.ResponseHeaderModifier != nil {
		set = append(set, "ResponseHeaderModifier")
	}
	if f.URLRewrite != nil {
		set = append(set, "URLRewrite")
	}
	if f.RequestRedirect != nil {
		set = append(set, "RequestRedirect")
	}
	if f.RequestMirror != nil {
		set = append(set, "RequestMirror")
	}
	return set
}

func defaultPool(p *Pool) {
	str(&p.Protocol, DefaultPoolProtocol)
	str(&p.Balancer, DefaultBalancer)
	dur(&p.DialTimeout, DefaultDialTimeout)
	dur(&p.IdleConnTimeout, DefaultIdleConnTimeout)
	dur(&p.ResolveInterval, DefaultResolveInterval)
	if in := p.Inference; in != nil {
		str(&in.ModelServer, DefaultModelServer)
		str(&in.Picker, DefaultPicker)
		str(&in.SessionHeader, DefaultSessionHeader)
		str(&in.MetricsPath, DefaultMetricsPath)
		num(&in.BlockSize, DefaultBlockSize)
		num(&in.CacheBlocks, DefaultCacheBlocks)
		num(&in.MaxPromptBytes, DefaultMaxPromptBytes)
		num(&in.LoadBound, DefaultLoadBound)
		num(&in.QueueThreshold, DefaultQueueThreshold)
		num(&in.KVThreshold, DefaultKVThreshold)
		num(&in.QueueSize, DefaultQueueSize)
		dur(&in.ScrapeInterval, DefaultScrapeInterval)
		dur(&in.QueueTimeout, DefaultQueueTimeout)
		if k := in.KVEvents; k != nil {
			str(&k.TokenizePath, DefaultTokenizePath)
			dur(&k.TokenizeTimeout, DefaultTokenizeTimeout)
			num(&k.TokenizeCache, DefaultTokenizeCache)
			dur(&k.StaleAfter, DefaultKVEventsStaleAfter)
			num(&k.MaxBlocks, DefaultKVEventsMaxBlocks)
			dur(&k.ReplayTimeout, DefaultKVReplayTimeout)
		}
	}
}

func str(p *string, def string) {
	if *p == "" {
		*p = def
	}
}

func num[T int | int64 | float64](p *T, def T) {
	if *p == 0 {
		*p = def
	}
}

func dur(p *Duration, def time.Duration) {
	if *p == 0 {
		*p = Duration(def)
	}
}
