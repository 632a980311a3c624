package proxy

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/pick"
)

// StatusView is a read-only picture of the running proxy, built on demand
// by Status for the status page, /debug/pools and /debug/routes. Building
// one allocates; nothing on the request path does.
type StatusView struct {
	Now      time.Time      `json:"now"`
	Started  time.Time      `json:"started"`
	Draining bool           `json:"draining"`
	Config   string         `json:"config"` // where the running configuration came from
	Admin    string         `json:"admin"`  // the admin listener's address
	Requests uint64         `json:"requests"`
	Errors   uint64         `json:"errors"`
	HitRate  *float64       `json:"hitRate,omitempty"`
	Listener []ListenerView `json:"listeners"`
	Identity *IdentityView  `json:"identity,omitempty"`
	Routes   []RouteView    `json:"routes"`
	Pools    []PoolView     `json:"pools"`
	Reloads  []ReloadEvent  `json:"reloads"`
	// Denials counts authorization denials by policy; RecentDenials lists
	// the last few, newest first.
	Denials       []DenialCount `json:"denials"`
	RecentDenials []DenialEvent `json:"recentDenials"`
	// Samples are per-second traffic samples over the last minutes, oldest first.
	Samples []Sample `json:"samples"`
}

// ListenerView is one client-facing listener.
type ListenerView struct {
	Name       string    `json:"name"`
	Address    string    `json:"address"`
	Protocols  []string  `json:"protocols"`
	TLS        string    `json:"tls"` // off | files | spiffe
	ClientAuth string    `json:"clientAuth,omitempty"`
	CertName   string    `json:"certSubject,omitempty"`
	CertExpiry time.Time `json:"certExpiry,omitzero"`
}

// IdentityView is the workload's SPIFFE identity.
type IdentityView struct {
	SPIFFEID    string    `json:"spiffeId"`
	Expiry      time.Time `json:"svidExpiry,omitzero"`
	TrustDomain string    `json:"trustDomain"`
	BundleCerts int       `json:"bundleAuthorities"`
	Error       string    `json:"error,omitempty"`
}

// RouteView is one route with its backends' weights and hit counts.
type RouteView struct {
	Name      string        `json:"name"`
	Listeners []string      `json:"listeners,omitempty"`
	Hostnames []string      `json:"hostnames,omitempty"`
	Matches   []string      `json:"matches,omitempty"`
	Hits      uint64        `json:"hits"`
	Backends  []BackendView `json:"backends"`
}

// BackendView is one weighted backend of a route.
type BackendView struct {
	Pool   string  `json:"pool"`
	Weight int     `json:"weight"`
	Share  float64 `json:"share"` // weight / sum of the route's weights
	Hits   uint64  `json:"hits"`
}

// PoolView is one pool and its endpoints.
type PoolView struct {
	Name        string            `json:"name"`
	Kind        string            `json:"kind"` // plain | inference
	Picker      string            `json:"picker,omitempty"`
	Balancer    string            `json:"balancer"`
	ModelServer string            `json:"modelServer,omitempty"`
	Protocol    string            `json:"protocol"`
	Picks       map[string]uint64 `json:"picks"` // by reason
	HitRate     *float64          `json:"hitRate,omitempty"`
	Queued      int64             `json:"queued"` // requests waiting in kvgate's saturation queue
	Shed        uint64            `json:"shed"`
	Endpoints   []EndpointView    `json:"endpoints"`
}

// EndpointView is one endpoint's state.
type EndpointView struct {
	Address string `json:"address"`
	// State is ready, ejected (passive health: connection failures) or
	// suspect (the last metrics scrape failed).
	State          string            `json:"state"`
	Inflight       int64             `json:"inflight"`
	InflightTokens int64             `json:"inflightTokens"`
	Queue          *int64            `json:"queue,omitempty"` // scraped; nil never scraped
	Running        *int64            `json:"running,omitempty"`
	KV             *float64          `json:"kv,omitempty"`
	ScrapeAgeSec   *float64          `json:"scrapeAgeSeconds,omitempty"`
	Picks          map[string]uint64 `json:"picks"`
	Recent         int64             `json:"recentPicks"`
	PromptTokens   uint64            `json:"promptTokens"`
	CachedTokens   uint64            `json:"cachedTokens"`
	HitRate        *float64          `json:"hitRate,omitempty"`
	TTFTP50Ms      *float64          `json:"ttftP50Ms,omitempty"`
	TTFTP99Ms      *float64          `json:"ttftP99Ms,omitempty"`
	TTFTSamples    int               `json:"ttftSamples"`
	// Cost is the latency preset's learned TTFT model of the endpoint
	// (pick/cost.go); nil before its first streamed reply taught it.
	Cost *CostView `json:"cost,omitempty"`
}

// CostView is an endpoint's learned TTFT model: predicted TTFT = base +
// msPerKiloToken × uncached prompt tokens / 1,000 + msPerRequestAhead ×
// requests ahead, from Samples streamed replies; Models holds the same per
// model name for the first models the endpoint served.
type CostView struct {
	BaseMs            float64             `json:"baseMs"`
	MsPerKiloToken    float64             `json:"msPerKiloToken"`
	MsPerRequestAhead float64             `json:"msPerRequestAhead"`
	Samples           int64               `json:"samples"`
	Models            map[string]CostView `json:"models,omitempty"`
}

// costView converts a learned cost model to milliseconds.
func costView(m pick.CostModel) CostView {
	return CostView{BaseMs: round3(m.Base * 1e3), MsPerKiloToken: round3(m.PerKiloToken * 1e3),
		MsPerRequestAhead: round3(m.PerAhead * 1e3), Samples: m.Samples}
}

// Status builds a StatusView of the running proxy.
func (p *Proxy) Status() StatusView {
	now := time.Now()
	s := p.snap.Load()
	st := &p.status
	v := StatusView{
		Now: now, Draining: p.draining.Load(), Config: s.cfg.Source,
		Requests: st.reqs.Load(), Errors: st.errs.Load(),
		Reloads: st.reloads.snapshot(), Denials: st.denials.counts(), RecentDenials: st.denials.recent.snapshot(),
		Samples: st.samples.snapshot(),
	}
	if v.Config == "" {
		v.Config = EmbeddedSource
	}
	if t := st.started.Load(); t != 0 {
		v.Started = time.Unix(0, t)
	}
	if a := p.AdminAddr(); a != nil {
		v.Admin = a.String()
	}
	v.HitRate = ratio(st.cached.Load(), st.prompt.Load())
	for _, l := range p.listeners {
		v.Listener = append(v.Listener, l.view())
	}
	v.Identity = p.identityView()
	v.Routes = p.routeViews(s.cfg)
	for _, pc := range s.cfg.Pools {
		if pl := s.pools[pc.Name]; pl != nil {
			v.Pools = append(v.Pools, p.poolView(pl, now))
		}
	}
	return v
}

func (l *Listener) view() ListenerView {
	v := ListenerView{Name: l.name, Address: l.cfg.Address, Protocols: l.cfg.Protocols, TLS: "off"}
	if l.ln != nil {
		v.Address = l.ln.Addr().String()
	}
	if t := l.cfg.TLS; t != nil {
		v.ClientAuth = t.ClientAuth
		switch {
		case t.SPIFFE:
			v.TLS = "spiffe"
			if ids := l.proxy.ident; ids != nil {
				if svid, err := ids.GetX509SVID(); err == nil && len(svid.Certificates) > 0 {
					v.CertExpiry, v.CertName = svid.Certificates[0].NotAfter, svid.ID.String()
				}
			}
		default:
			v.TLS = "files"
			if l.certFiles != nil {
				if c := l.certFiles.Certificate(); c != nil {
					v.CertExpiry, v.CertName = certExpiry(c.Certificate, c.Leaf)
				}
			}
		}
	}
	return v
}

func (p *Proxy) identityView() *IdentityView {
	if p.ident == nil {
		return nil
	}
	svid, err := p.ident.GetX509SVID()
	if err != nil {
		return &IdentityView{Error: err.Error()}
	}
	v := &IdentityView{SPIFFEID: svid.ID.String(), TrustDomain: svid.ID.TrustDomain().Name()}
	if len(svid.Certificates) > 0 {
		v.Expiry = svid.Certificates[0].NotAfter
	}
	if b, err := p.ident.GetX509BundleForTrustDomain(svid.ID.TrustDomain()); err == nil {
		v.BundleCerts = len(b.X509Authorities())
	}
	return v
}

func (p *Proxy) routeViews(cfg *config.Config) []RouteView {
	var hits map[string]*routeHits
	if m := p.status.routes.Load(); m != nil {
		hits = *m
	}
	out := make([]RouteView, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		v := RouteView{Name: r.Name, Listeners: r.Listeners, Hostnames: r.Hostnames}
		for _, m := range r.Matches {
			v.Matches = append(v.Matches, matchText(m))
		}
		h := hits[r.Name]
		if h != nil {
			v.Hits = h.hits.Load()
		}
		total := 0
		for _, b := range r.Backends {
			total += weightOf(b)
		}
		for _, b := range r.Backends {
			bv := BackendView{Pool: b.Pool, Weight: weightOf(b)}
			if total > 0 {
				bv.Share = round3(float64(bv.Weight) / float64(total))
			}
			if h != nil {
				if c := h.backends[b.Pool]; c != nil {
					bv.Hits = c.Load()
				}
			}
			v.Backends = append(v.Backends, bv)
		}
		out = append(out, v)
	}
	return out
}

func weightOf(b config.Backend) int {
	if b.Weight == nil {
		return config.DefaultBackendWeight // config.Default sets it; a view of an undefaulted config reads the same
	}
	return *b.Weight
}

// matchText is a one-line summary of a match, e.g. "POST PathPrefix /v1/ x-canary=true model=llama".
func matchText(m config.Match) string {
	var parts []string
	if m.Method != "" {
		parts = append(parts, m.Method)
	}
	if m.Path != nil {
		t := m.Path.Type
		if t == "" {
			t = "PathPrefix"
		}
		parts = append(parts, t+" "+m.Path.Value)
	}
	for _, h := range m.Headers {
		parts = append(parts, "header "+h.Name+matchOp(h.Type)+redactHeaderValue(h.Name, h.Value))
	}
	for _, q := range m.QueryParams {
		parts = append(parts, "query "+q.Name+matchOp(q.Type)+q.Value)
	}
	if m.Model != nil {
		parts = append(parts, "model"+matchOp(m.Model.Type)+m.Model.Value)
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, " ")
}

func matchOp(typ string) string {
	if typ == "RegularExpression" {
		return "~"
	}
	return "="
}

func (p *Proxy) poolView(pl *pool, now time.Time) PoolView {
	v := PoolView{Name: pl.name, Kind: "plain", Balancer: pl.cfg.Balancer, Protocol: pl.cfg.Protocol, Picks: map[string]uint64{}}
	if v.Protocol == "" {
		v.Protocol = "http1"
	}
	if in := pl.cfg.Inference; in != nil {
		v.Kind, v.Picker, v.ModelServer = "inference", in.Picker, in.ModelServer
		if ip := p.infer.get(pl.name); ip != nil {
			v.Queued, v.Shed = ip.q.n.Load(), ip.q.shed.Load()
		}
	}
	var prompt, cached uint64
	for _, e := range pl.list.Load().eps {
		ev := endpointView(e.state, now)
		for r, n := range ev.Picks {
			v.Picks[r] += n
		}
		prompt += ev.PromptTokens
		cached += ev.CachedTokens
		v.Endpoints = append(v.Endpoints, ev)
	}
	v.HitRate = ratio(cached, prompt)
	slices.SortFunc(v.Endpoints, func(a, b EndpointView) int { return strings.Compare(a.Address, b.Address) })
	return v
}

func endpointView(e *pick.Endpoint, now time.Time) EndpointView {
	v := EndpointView{Address: e.Addr, State: "ready", Picks: map[string]uint64{}, Recent: e.Recent()}
	switch {
	case !e.Ready(now.UnixNano()):
		v.State = "ejected"
	case e.Suspect():
		v.State = "suspect"
	}
	v.Inflight, v.InflightTokens = e.Inflight()
	if sc := e.Scraped(); sc.At > 0 {
		q, r := sc.Waiting, sc.Running
		v.Queue, v.Running = &q, &r
		age := round3(now.Sub(time.Unix(0, sc.At)).Seconds())
		v.ScrapeAgeSec = &age
		if !math.IsNaN(sc.KV) {
			kv := round3(sc.KV)
			v.KV = &kv
		}
	}
	for _, r := range pick.Reasons {
		if n := e.Picks(r); n > 0 {
			v.Picks[r.String()] = n
		}
	}
	v.PromptTokens, v.CachedTokens = e.UsageTokens()
	v.HitRate = ratio(v.CachedTokens, v.PromptTokens)
	if q, n := e.TTFTQuantiles(0.5, 0.99); n > 0 {
		p50, p99 := ms(q[0]), ms(q[1])
		v.TTFTP50Ms, v.TTFTP99Ms, v.TTFTSamples = &p50, &p99, n
	}
	if m := e.CostModel(); m.Samples > 0 {
		c := costView(m)
		for name, mm := range e.ModelCostModels() {
			if mm.Samples > 0 {
				if c.Models == nil {
					c.Models = map[string]CostView{}
				}
				c.Models[name] = costView(mm)
			}
		}
		v.Cost = &c
	}
	return v
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func ratio(a, b uint64) *float64 {
	if b == 0 {
		return nil
	}
	r := round3(float64(a) / float64(b))
	return &r
}
