package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/kvgate/kvgate/pick"
)

// The values each enumeration allows. Balancer, picker and scorer names are
// package pick's registry (pick.BalancerNames, pick.PresetNames,
// pick.Names(pick.KindScorer)), read there and nowhere else.
var (
	listenerProtocols = []string{"http1", "http2", "http3"}
	clientAuths       = []string{"none", "request", "require"}
	pathTypes         = []string{"Exact", "PathPrefix", "RegularExpression"}
	valueTypes        = []string{"Exact", "RegularExpression"}
	methods           = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
	filterTypes       = []string{"RequestHeaderModifier", "ResponseHeaderModifier", "URLRewrite", "RequestRedirect", "RequestMirror"}
	pathModifierTypes = []string{"ReplaceFullPath", "ReplacePrefixMatch"}
	redirectStatuses  = []int{301, 302, 303, 307, 308}
	poolProtocols     = []string{"http1", "h2c", "h2"}
	modelServers      = []string{"vllm", "sglang", "tgi", "llamacpp", "triton"}
	authzActions      = []string{"ALLOW", "DENY"}
	escapedSlashModes = []string{"reject", "decode", "keep"}
)

// Validate checks a defaulted configuration (see Default) and returns a
// *Errors listing every problem, each saying what to do, or nil. It reads
// nothing but c: file paths are checked by whoever opens them. When c came
// from Parse, problems carry the file, line and column of their key.
func Validate(c *Config) error {
	if c == nil {
		return &Errors{{Msg: "config: no configuration (nil *Config)"}}
	}
	return asError(validate(c, nil))
}

// validator collects problems and knows the names defined in the configuration.
type validator struct {
	c         *Config
	errs      Errors
	listeners map[string]int
	routes    map[string]int
	pools     map[string]int
	// bad holds paths that failed to decode (from Parse; nil otherwise). A list
	// whose names could not be read is not used to reject references to it.
	bad    map[string]bool
	broken map[string]bool   // list → unreadable(list)
	msgs   map[string]string // remembered refMsg answers
}

func validate(c *Config, bad map[string]bool) Errors {
	v := &validator{c: c, bad: bad}
	v.listeners = v.names("listeners", "listener", len(c.Listeners), func(i int) string { return c.Listeners[i].Name })
	v.routes = v.names("routes", "route", len(c.Routes), func(i int) string { return c.Routes[i].Name })
	v.pools = v.names("pools", "pool", len(c.Pools), func(i int) string { return c.Pools[i].Name })
	v.names("authorization", "policy", len(c.Authorization), func(i int) string { return c.Authorization[i].Name })

	v.admin()
	v.listenersOK()
	v.identity()
	for i := range c.Routes {
		v.route(indexPath("routes", i), &c.Routes[i])
	}
	for i := range c.Pools {
		v.pool(indexPath("pools", i), &c.Pools[i])
	}
	for i := range c.Authorization {
		v.policy(indexPath("authorization", i), &c.Authorization[i])
	}
	v.limits()
	v.paths()
	v.tracing()
	v.negativeDurations(reflect.ValueOf(c).Elem(), "")
	return v.errs
}

func (v *validator) errf(path, format string, args ...any) {
	v.errs = append(v.errs, v.c.ErrorAt(path, fmt.Sprintf(format, args...)))
}

// names requires a unique, non-empty name on each item of a list and returns
// name → index.
func (v *validator) names(list, what string, n int, name func(int) string) map[string]int {
	seen := make(map[string]int, n)
	for i := range n {
		p := childPath(indexPath(list, i), "name")
		nm := name(i)
		switch first, dup := seen[nm]; {
		case nm == "":
			v.errf(p, "every %s needs a name: add name: <%s-name>", what, what)
		case strings.ContainsFunc(nm, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			v.errf(p, "%s name %q contains spaces or control characters; use letters, digits, '-', '.', '_'", what, nm)
		case dup:
			v.errf(p, "%s name %q is already used by %s; give each %s its own name", what, nm, indexPath(list, first), what)
		default:
			seen[nm] = i
		}
	}
	return seen
}

// ref checks that name is defined in defined (listeners, routes or pools).
func (v *validator) ref(path, what, name string, defined map[string]int) {
	if name == "" {
		v.errf(path, "name a %s here", what)
		return
	}
	if _, ok := defined[name]; ok || v.unreadable(what+"s") {
		return
	}
	v.errf(path, "%s", v.refMsg(what, name, defined))
}

// maxSuggestNames bounds the names searched for a did-you-mean and listed in
// a message, so that huge generated files stay fast to check.
const maxSuggestNames = 200

// refMsg says that name is not defined, with the closest defined name or
// the list of them. Messages are remembered: one file may repeat a name often.
func (v *validator) refMsg(what, name string, defined map[string]int) string {
	key := what + "\x00" + name
	if msg, ok := v.msgs[key]; ok {
		return msg
	}
	known := make([]string, 0, len(defined))
	for n := range defined {
		known = append(known, n)
	}
	slices.Sort(known)
	var msg string
	s := ""
	if len(known) <= maxSuggestNames {
		s = suggest(name, known)
	}
	switch {
	case s != "":
		msg = fmt.Sprintf("no %s named %q; did you mean %q?", what, name, s)
	case len(known) == 0:
		msg = fmt.Sprintf("no %s named %q, and none are defined; add it under %ss", what, name, what)
	case len(known) > 10:
		msg = fmt.Sprintf("no %s named %q; define it under %ss or check the spelling", what, name, what)
	default:
		msg = fmt.Sprintf("no %s named %q; define it under %ss or use one of %s", what, name, what, strings.Join(known, ", "))
	}
	if v.msgs == nil {
		v.msgs = map[string]string{}
	}
	v.msgs[key] = msg
	return msg
}

// unreadable reports whether list, or the name of one of its items, failed to
// decode, so that its set of names is incomplete. Answers are remembered.
func (v *validator) unreadable(list string) bool {
	if r, ok := v.broken[list]; ok {
		return r
	}
	r := false
	for p := range v.bad {
		if p == list || within(p, list) && (parentPath(p) == list || strings.HasSuffix(p, "].name") && parentPath(parentPath(p)) == list) {
			r = true
			break
		}
	}
	if v.broken == nil {
		v.broken = map[string]bool{}
	}
	v.broken[list] = r
	return r
}

// oneOf checks an enumeration value.
func (v *validator) oneOf(path, what, got string, allowed []string) bool {
	if slices.Contains(allowed, got) {
		return true
	}
	v.errf(path, "%s", oneOfMsg(what, got, allowed))
	return false
}

func (v *validator) admin() {
	if a := v.c.Admin.Address; a != "off" {
		if msg := listenAddrProblem(a); msg != "" {
			v.errf("admin.address", "%s (or \"off\" to disable the admin listener)", msg)
		}
	}
}

func (v *validator) listenersOK() {
	c := v.c
	if len(c.Listeners) == 0 {
		v.errf("listeners", "at least one listener is required: add listeners: [{name: plain, address: 127.0.0.1:8080}]")
	}
	used := map[string]string{} // "tcp|udp address" → path of the first listener
	if c.Admin.Address != "off" {
		used["tcp "+c.Admin.Address] = "admin.address"
	}
	for i := range c.Listeners {
		p := indexPath("listeners", i)
		l := &c.Listeners[i]
		if l.Address == "" {
			v.errf(childPath(p, "address"), "address is required: write host:port, e.g. 0.0.0.0:8443")
		} else if msg := listenAddrProblem(l.Address); msg != "" {
			v.errf(childPath(p, "address"), "%s", msg)
		} else if !strings.HasSuffix(l.Address, ":0") {
			for _, tr := range transports(l.Protocols) {
				key := tr + " " + l.Address
				if first, dup := used[key]; dup {
					v.errf(childPath(p, "address"), "address %s is already used by %s; give each listener its own port", l.Address, first)
					break
				}
				used[key] = childPath(p, "address")
			}
		}
		v.protocols(p, l)
		if l.TLS != nil {
			v.listenerTLS(childPath(p, "tls"), l.TLS)
		}
		for j, tp := range l.TrustedProxies {
			if !isIPOrCIDR(tp) {
				v.errf(indexPath(childPath(p, "trustedProxies"), j), "%q is not an IP address or CIDR; write it like 10.0.0.0/8 or 192.0.2.7", tp)
			}
		}
	}
}

// transports returns the sockets a listener opens: tcp for http1/http2, udp for http3.
func transports(protocols []string) []string {
	var out []string
	if slices.Contains(protocols, "http1") || slices.Contains(protocols, "http2") || len(protocols) == 0 {
		out = append(out, "tcp")
	}
	if slices.Contains(protocols, "http3") {
		out = append(out, "udp")
	}
	return out
}

func (v *validator) protocols(p string, l *Listener) {
	seen := map[string]bool{}
	for j, proto := range l.Protocols {
		pp := indexPath(childPath(p, "protocols"), j)
		if !v.oneOf(pp, "protocol", proto, listenerProtocols) {
			continue
		}
		if seen[proto] {
			v.errf(pp, "protocol %s is listed twice; remove one", proto)
		}
		seen[proto] = true
		if proto == "http3" && l.TLS == nil {
			v.errf(pp, "http3 needs tls (QUIC is always encrypted): add tls with certFile and keyFile (or spiffe: true), or remove http3")
		}
	}
}

func (v *validator) listenerTLS(p string, t *ListenerTLS) {
	files := t.CertFile != "" || t.KeyFile != ""
	switch {
	case t.SPIFFE && files:
		v.errf(p, "set either spiffe: true or certFile and keyFile, not both")
	case t.SPIFFE:
		if v.c.Identity == nil {
			v.errf(childPath(p, "spiffe"), "spiffe: true serves the workload SVID, which needs an identity section: add identity: {workloadAPI: unix:///run/spire/sockets/agent.sock}")
		}
	case t.CertFile == "" && t.KeyFile == "":
		v.errf(p, "tls needs certFile and keyFile, or spiffe: true to serve the workload SVID")
	case t.CertFile == "":
		v.errf(childPath(p, "certFile"), "keyFile is set but certFile is not: add certFile")
	case t.KeyFile == "":
		v.errf(childPath(p, "keyFile"), "certFile is set but keyFile is not: add keyFile")
	}
	if v.oneOf(childPath(p, "clientAuth"), "clientAuth", t.ClientAuth, clientAuths) &&
		t.ClientAuth == "require" && !t.SPIFFE && t.ClientCAFile == "" && v.c.Identity == nil {
		v.errf(childPath(p, "clientAuth"), "clientAuth: require needs something to verify client certificates against: add clientCAFile, or an identity section to use its SPIFFE trust bundle")
	}
	if t.ClientCAFile != "" && t.SPIFFE {
		v.errf(childPath(p, "clientCAFile"), "with spiffe: true clients are verified against the SPIFFE trust bundle; remove clientCAFile")
	}
}

func (v *validator) identity() {
	id := v.c.Identity
	if id == nil {
		return
	}
	if id.WorkloadAPI != "" && id.Files != nil {
		v.errf("identity", "set either workloadAPI or files, not both")
	}
	if id.WorkloadAPI != "" {
		u, err := url.Parse(id.WorkloadAPI)
		if err != nil || (u.Scheme != "unix" && u.Scheme != "tcp") {
			v.errf("identity.workloadAPI", "%q is not a Workload API address; write unix:///path/to/agent.sock or tcp://127.0.0.1:8081", id.WorkloadAPI)
		}
	}
	if id.Files != nil && id.Files.Dir == "" {
		v.errf("identity.files.dir", "files needs dir: the directory holding svid.0.pem, svid.0.key and bundle.0.pem")
	}
}

func (v *validator) route(p string, r *Route) {
	for j, l := range r.Listeners {
		v.ref(indexPath(childPath(p, "listeners"), j), "listener", l, v.listeners)
	}
	for j, h := range r.Hostnames {
		if !validHostname(h) {
			v.errf(indexPath(childPath(p, "hostnames"), j), "%q is not a hostname; write api.example.com or *.example.com, without scheme or port", h)
		}
	}
	prefixOnly := true
	for j := range r.Matches {
		m := &r.Matches[j]
		v.match(indexPath(childPath(p, "matches"), j), m)
		if m.Path != nil && m.Path.Type != "PathPrefix" {
			prefixOnly = false
		}
	}
	redirect := v.filters(childPath(p, "filters"), r.Filters, prefixOnly)
	v.backends(p, r, redirect, prefixOnly)
	if sa := r.SessionAffinity; sa != nil {
		sp := childPath(p, "sessionAffinity")
		switch {
		case (sa.Header == "") == (sa.Cookie == ""):
			v.errf(sp, "set exactly one of header or cookie")
		case sa.Header != "" && !isToken(sa.Header):
			v.errf(childPath(sp, "header"), "%q is not a valid header name", sa.Header)
		case sa.Cookie != "" && !isToken(sa.Cookie):
			v.errf(childPath(sp, "cookie"), "%q is not a valid cookie name", sa.Cookie)
		}
	}
	if t := r.Timeouts; t != nil && t.Request > 0 && t.BackendRequest > t.Request {
		v.errf(childPath(p, "timeouts.backendRequest"), "backendRequest (%s) is longer than request (%s), so it can never fire; shorten it or raise request",
			t.BackendRequest.D(), t.Request.D())
	}
	if rt := r.Retry; rt != nil {
		rp := childPath(p, "retry")
		if rt.Attempts < 0 {
			v.errf(childPath(rp, "attempts"), "attempts must be 0 or more")
		}
		for j, code := range rt.Codes {
			if code < 100 || code > 599 {
				v.errf(indexPath(childPath(rp, "codes"), j), "%d is not an HTTP status code; use 100 to 599, e.g. 502, 503", code)
			}
		}
		if rt.BudgetPercent < 0 || rt.BudgetPercent > 100 {
			v.errf(childPath(rp, "budgetPercent"), "budgetPercent must be between 0 and 100, got %g", rt.BudgetPercent)
		}
	}
}

func (v *validator) backends(p string, r *Route, redirect, prefixOnly bool) {
	bp := childPath(p, "backends")
	if len(r.Backends) == 0 {
		if !redirect {
			v.errf(bp, "a route needs at least one backend: add backends: [{pool: <pool-name>}]")
		}
		return
	}
	total := 0
	for j := range r.Backends {
		b := &r.Backends[j]
		p := indexPath(bp, j)
		v.ref(childPath(p, "pool"), "pool", b.Pool, v.pools)
		w := DefaultBackendWeight
		if b.Weight != nil {
			w = *b.Weight
		}
		if w < 0 {
			v.errf(childPath(p, "weight"), "weight must be 0 or more, got %d", w)
		} else {
			total += w
		}
		v.filters(childPath(p, "filters"), b.Filters, prefixOnly)
		mt := 0
		for k, t := range b.ModelRewrite {
			tp := indexPath(childPath(p, "modelRewrite"), k)
			if t.Model == "" {
				v.errf(childPath(tp, "model"), "name the model to send")
			}
			if t.Weight < 0 {
				v.errf(childPath(tp, "weight"), "weight must be 0 or more, got %d", t.Weight)
			}
			mt += max(t.Weight, 0)
		}
		if len(b.ModelRewrite) > 1 && mt == 0 {
			v.errf(childPath(p, "modelRewrite"), "every model weight is 0, so no model can be chosen; give one a positive weight")
		}
	}
	if total == 0 {
		v.errf(bp, "every backend weight is 0, so this route can send nothing; give at least one backend a positive weight")
	}
}

func (v *validator) match(p string, m *Match) {
	if pm := m.Path; pm != nil {
		pp := childPath(p, "path")
		if v.oneOf(childPath(pp, "type"), "path match type", pm.Type, pathTypes) {
			if pm.Type == "RegularExpression" {
				v.regex(childPath(pp, "value"), pm.Value)
			} else if !strings.HasPrefix(pm.Value, "/") {
				v.errf(childPath(pp, "value"), "path %q must start with \"/\"", pm.Value)
			}
		}
	}
	if m.Method != "" && !slices.Contains(methods, m.Method) {
		v.errf(childPath(p, "method"), "%s", oneOfMsg("method", m.Method, methods))
	}
	for j := range m.Headers {
		v.valueMatch(indexPath(childPath(p, "headers"), j), &m.Headers[j], true)
	}
	for j := range m.QueryParams {
		v.valueMatch(indexPath(childPath(p, "queryParams"), j), &m.QueryParams[j], false)
	}
	if m.Model != nil {
		mp := childPath(p, "model")
		if v.oneOf(childPath(mp, "type"), "model match type", m.Model.Type, valueTypes) && m.Model.Type == "RegularExpression" {
			v.regex(childPath(mp, "value"), m.Model.Value)
		}
	}
}

func (v *validator) valueMatch(p string, h *HeaderMatch, header bool) {
	switch {
	case h.Name == "":
		v.errf(childPath(p, "name"), "name is required")
	case header && !isToken(h.Name):
		v.errf(childPath(p, "name"), "%q is not a valid header name (letters, digits and !#$%%&'*+-.^_`|~ only)", h.Name)
	}
	if v.oneOf(childPath(p, "type"), "match type", h.Type, valueTypes) && h.Type == "RegularExpression" {
		v.regex(childPath(p, "value"), h.Value)
	}
}

func (v *validator) regex(p, expr string) {
	if _, err := regexp.Compile(expr); err != nil {
		v.errf(p, "regular expression does not compile (RE2 syntax, no lookaround or backreferences): %v", err)
	}
}

// filters validates a filter list and reports whether it redirects.
func (v *validator) filters(p string, fs []Filter, prefixOnly bool) (redirect bool) {
	rewrite := false
	for j := range fs {
		f := &fs[j]
		fp := indexPath(p, j)
		set := f.setFields()
		switch {
		case len(set) == 0:
			v.errf(fp, "a filter needs one of requestHeaderModifier, responseHeaderModifier, urlRewrite, requestRedirect, requestMirror")
			continue
		case len(set) > 1:
			v.errf(fp, "a filter sets exactly one of %s; split it into %d filters", strings.Join(set, ", "), len(set))
			continue
		case f.Type != "" && f.Type != set[0]:
			if v.oneOf(childPath(fp, "type"), "filter type", f.Type, filterTypes) {
				v.errf(childPath(fp, "type"), "type %s does not match the %s that is set; write type: %s or remove type", f.Type, set[0], set[0])
			}
			continue
		}
		v.headerModifier(childPath(fp, "requestHeaderModifier"), f.RequestHeaderModifier)
		v.headerModifier(childPath(fp, "responseHeaderModifier"), f.ResponseHeaderModifier)
		if u := f.URLRewrite; u != nil {
			rewrite = true
			v.pathModifier(childPath(fp, "urlRewrite.path"), u.Path, prefixOnly)
		}
		if rr := f.RequestRedirect; rr != nil {
			redirect = true
			rp := childPath(fp, "requestRedirect")
			if rr.Scheme != "" && rr.Scheme != "http" && rr.Scheme != "https" {
				v.errf(childPath(rp, "scheme"), "scheme must be http or https, got %q", rr.Scheme)
			}
			if rr.Port < 0 || rr.Port > 65535 {
				v.errf(childPath(rp, "port"), "port must be 1 to 65535, got %d", rr.Port)
			}
			if !slices.Contains(redirectStatuses, rr.StatusCode) {
				v.errf(childPath(rp, "statusCode"), "statusCode must be one of 301, 302, 303, 307, 308, got %d", rr.StatusCode)
			}
			v.pathModifier(childPath(rp, "path"), rr.Path, prefixOnly)
		}
		if m := f.RequestMirror; m != nil {
			mp := childPath(fp, "requestMirror")
			v.ref(childPath(mp, "pool"), "pool", m.Pool, v.pools)
			if m.Percent < 0 || m.Percent > 100 {
				v.errf(childPath(mp, "percent"), "percent must be between 0 and 100, got %g", m.Percent)
			}
		}
	}
	if redirect && rewrite {
		v.errf(p, "requestRedirect and urlRewrite cannot be used together (Gateway API); keep one")
	}
	return redirect
}

func (v *validator) headerModifier(p string, h *HeaderModifier) {
	if h == nil {
		return
	}
	for _, list := range []struct {
		key string
		hs  []Header
	}{{"set", h.Set}, {"add", h.Add}} {
		for j, hd := range list.hs {
			hp := indexPath(childPath(p, list.key), j)
			if !isToken(hd.Name) {
				v.errf(childPath(hp, "name"), "%q is not a valid header name", hd.Name)
			}
			if strings.ContainsAny(hd.Value, "\r\n\x00") {
				v.errf(childPath(hp, "value"), "header values cannot contain line breaks or NUL")
			}
		}
	}
	for j, name := range h.Remove {
		if !isToken(name) {
			v.errf(indexPath(childPath(p, "remove"), j), "%q is not a valid header name", name)
		}
	}
}

func (v *validator) pathModifier(p string, m *PathModifier, prefixOnly bool) {
	if m == nil {
		return
	}
	if !v.oneOf(childPath(p, "type"), "path modifier type", m.Type, pathModifierTypes) {
		return
	}
	full := m.Type == "ReplaceFullPath"
	switch {
	case full && m.ReplacePrefixMatch != "", !full && m.ReplaceFullPath != "":
		v.errf(p, "type %s uses only the field of the same name; remove the other", m.Type)
	case full && !strings.HasPrefix(m.ReplaceFullPath, "/"):
		v.errf(childPath(p, "replaceFullPath"), "replaceFullPath must start with \"/\"")
	case !full && !strings.HasPrefix(m.ReplacePrefixMatch, "/"):
		v.errf(childPath(p, "replacePrefixMatch"), "replacePrefixMatch must start with \"/\"")
	case !full && !prefixOnly:
		v.errf(childPath(p, "type"), "ReplacePrefixMatch needs every match of the route to be a PathPrefix match; use ReplaceFullPath or change the matches")
	}
}

func (v *validator) pool(p string, pl *Pool) {
	switch {
	case len(pl.Endpoints) > 0 && pl.DNS != "":
		v.errf(childPath(p, "dns"), "set either endpoints or dns, not both")
	case len(pl.Endpoints) == 0 && pl.DNS == "" && !pl.Discovered:
		v.errf(childPath(p, "endpoints"), "a pool needs endpoints: [host:port, ...] or dns: name:port")
	case pl.DNS != "":
		if msg := upstreamAddrProblem(pl.DNS); msg != "" {
			v.errf(childPath(p, "dns"), "%s", msg)
		}
	}
	seen := make(map[string]int, len(pl.Endpoints))
	for j, ep := range pl.Endpoints {
		// the path is built only for a message: a discovered pool may list
		// 10,000 endpoints
		ep2 := func() string { return indexPath(childPath(p, "endpoints"), j) }
		if msg := upstreamAddrProblem(ep); msg != "" {
			v.errf(ep2(), "%s", msg)
		} else if first, dup := seen[ep]; dup {
			v.errf(ep2(), "endpoint %s is listed twice (first at index %d); remove one", ep, first)
		} else {
			seen[ep] = j
		}
	}
	if pl.Protocol == "http2" {
		v.errf(childPath(p, "protocol"), "upstream HTTP/2 is written h2 (over TLS) or h2c (cleartext)")
	} else {
		v.oneOf(childPath(p, "protocol"), "protocol", pl.Protocol, poolProtocols)
	}
	v.oneOf(childPath(p, "balancer"), "balancer", pl.Balancer, pick.BalancerNames())
	if pl.MaxConnsPerEndpoint < 0 {
		v.errf(childPath(p, "maxConnsPerEndpoint"), "maxConnsPerEndpoint must be 0 (no cap) or more")
	}
	switch {
	case pl.Protocol == "h2" && pl.TLS == nil:
		v.errf(childPath(p, "protocol"), "h2 is HTTP/2 over TLS: add tls, or use h2c for cleartext HTTP/2")
	case pl.Protocol == "h2c" && pl.TLS != nil:
		v.errf(childPath(p, "protocol"), "h2c is cleartext HTTP/2 but tls is set: use h2")
	}
	if pl.TLS != nil {
		v.upstreamTLS(childPath(p, "tls"), pl.TLS)
	}
	if pl.Inference != nil {
		v.inference(childPath(p, "inference"), pl.Inference)
	}
}

func (v *validator) upstreamTLS(p string, t *UpstreamTLS) {
	spiffe := t.SPIFFEID != "" || t.TrustDomain != ""
	if t.SPIFFEID != "" && t.TrustDomain != "" {
		v.errf(p, "set either spiffeID (one exact server) or trustDomain (any server of the domain), not both")
	}
	if t.SPIFFEID != "" {
		if u, err := url.Parse(t.SPIFFEID); err != nil || u.Scheme != "spiffe" || u.Host == "" {
			v.errf(childPath(p, "spiffeID"), "%q is not a SPIFFE ID; write spiffe://trust-domain/path", t.SPIFFEID)
		}
	}
	if t.TrustDomain != "" && (strings.Contains(t.TrustDomain, "/") || strings.Contains(t.TrustDomain, ":")) {
		v.errf(childPath(p, "trustDomain"), "%q is not a trust domain; write just the name, like example.org", t.TrustDomain)
	}
	if spiffe && v.c.Identity == nil {
		v.errf(p, "SPIFFE upstream TLS dials with the workload SVID, which needs an identity section: add identity: {workloadAPI: unix:///run/spire/sockets/agent.sock}")
	}
	if spiffe && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "") {
		v.errf(p, "with spiffeID or trustDomain the workload SVID and trust bundle are used; remove caFile, certFile and keyFile")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.errf(p, "set certFile and keyFile together")
	}
}

func (v *validator) inference(p string, in *Inference) {
	v.oneOf(childPath(p, "modelServer"), "modelServer", in.ModelServer, modelServers)
	v.oneOf(childPath(p, "picker"), "picker", in.Picker, pick.PresetNames())
	seen := map[string]bool{}
	scorers := pick.Names(pick.KindScorer)
	for j, s := range in.Scorers {
		sp := indexPath(childPath(p, "scorers"), j)
		if v.oneOf(childPath(sp, "name"), "scorer", s.Name, scorers) && seen[s.Name] {
			v.errf(childPath(sp, "name"), "scorer %s is listed twice; keep one", s.Name)
		}
		seen[s.Name] = true
		if s.Weight < 0 {
			v.errf(childPath(sp, "weight"), "weight must be 0 or more, got %g", s.Weight)
		}
	}
	if in.SessionHeader != "" && !isToken(in.SessionHeader) {
		v.errf(childPath(p, "sessionHeader"), "%q is not a valid header name", in.SessionHeader)
	}
	positive := []struct {
		key string
		val int
	}{{"blockSize", in.BlockSize}, {"cacheBlocks", in.CacheBlocks}, {"maxPromptBytes", in.MaxPromptBytes}, {"queueThreshold", in.QueueThreshold}, {"queueSize", in.QueueSize}}
	for _, f := range positive {
		if f.val < 0 {
			v.errf(childPath(p, f.key), "%s must be positive, got %d", f.key, f.val)
		}
	}
	if in.LoadBound != 0 && in.LoadBound < 1 {
		v.errf(childPath(p, "loadBound"), "loadBound is a factor over the mean load and must be 1 or more (e.g. 1.25), got %g", in.LoadBound)
	}
	if in.KVThreshold < 0 || in.KVThreshold > 1 {
		v.errf(childPath(p, "kvThreshold"), "kvThreshold is a share of the KV cache, between 0 and 1 (e.g. 0.8), got %g", in.KVThreshold)
	}
	if in.MetricsPath != "" && !strings.HasPrefix(in.MetricsPath, "/") {
		v.errf(childPath(p, "metricsPath"), "metricsPath must start with \"/\", like /metrics")
	}
	if k := in.KVEvents; k != nil {
		v.kvEvents(childPath(p, "kvEvents"), k)
	}
	names := map[string]bool{}
	for j, o := range in.Objectives {
		op := childPath(indexPath(childPath(p, "objectives"), j), "name")
		if o.Name == "" {
			v.errf(op, "every objective needs a name")
		} else if names[o.Name] {
			v.errf(op, "objective %q is listed twice; keep one", o.Name)
		}
		names[o.Name] = true
	}
}

func (v *validator) kvEvents(p string, k *KVEvents) {
	form := func(key, val string, required bool) {
		switch {
		case val == "" && required:
			v.errf(childPath(p, key), "%s is required: the publisher's port (5557, vLLM's default), +N (the endpoint's port plus N) or a template like tcp://{host}:5557", key)
		case val == "" || isPort(val):
		case strings.HasPrefix(val, "+"):
			if _, ok := portOffset(val); !ok {
				v.errf(childPath(p, key), "%q is not a port offset; write +N (the endpoint's port plus N), like +1000", val)
			}
		case !strings.HasPrefix(val, "tcp://"):
			v.errf(childPath(p, key), "%q is neither a port, a +N port offset nor a tcp:// URL; write 5557, +1000 or tcp://{host}:5557", val)
		case !strings.Contains(val, "{host}"):
			v.errf(childPath(p, key), "%q names no {host}, so every endpoint would share one publisher; write tcp://{host}:PORT or just the port", val)
		}
	}
	form("endpoint", k.Endpoint, true)
	form("replayEndpoint", k.ReplayEndpoint, false)
	if k.TokenizePath != "" && !strings.HasPrefix(k.TokenizePath, "/") {
		v.errf(childPath(p, "tokenizePath"), "tokenizePath must start with \"/\", like /tokenize")
	}
	if k.TokenizeCache < 0 {
		v.errf(childPath(p, "tokenizeCache"), "tokenizeCache must be positive, got %d", k.TokenizeCache)
	}
	if k.MaxBlocks < 0 {
		v.errf(childPath(p, "maxBlocks"), "maxBlocks must be positive, got %d", k.MaxBlocks)
	}
	for _, d := range []struct {
		key string
		val Duration
	}{{"tokenizeTimeout", k.TokenizeTimeout}, {"staleAfter", k.StaleAfter}, {"replayTimeout", k.ReplayTimeout}} {
		if d.val.D() < 0 {
			v.errf(childPath(p, d.key), "%s must be positive, like 100ms", d.key)
		}
	}
}

func (v *validator) policy(p string, a *AuthorizationPolicy) {
	v.oneOf(childPath(p, "action"), "action", a.Action, authzActions)
	for j, r := range a.Routes {
		v.ref(indexPath(childPath(p, "routes"), j), "route", r, v.routes)
	}
	for j, pl := range a.Pools {
		v.ref(indexPath(childPath(p, "pools"), j), "pool", pl, v.pools)
	}
	for j := range a.Rules {
		rp := indexPath(childPath(p, "rules"), j)
		r := &a.Rules[j]
		for k, f := range r.From {
			fp := indexPath(childPath(rp, "from"), k)
			v.ipBlocks(childPath(fp, "ipBlocks"), f.IPBlocks)
			v.ipBlocks(childPath(fp, "notIpBlocks"), f.NotIPBlocks)
		}
		for k, t := range r.To {
			tp := indexPath(childPath(rp, "to"), k)
			v.tokens(childPath(tp, "methods"), t.Methods)
			v.tokens(childPath(tp, "notMethods"), t.NotMethods)
			v.ports(childPath(tp, "ports"), t.Ports)
			v.ports(childPath(tp, "notPorts"), t.NotPorts)
		}
		for k, w := range r.When {
			if w.Key == "" {
				v.errf(childPath(indexPath(childPath(rp, "when"), k), "key"), "a condition needs a key, like request.headers[x-team] or source.ip")
			}
		}
	}
}

func (v *validator) ipBlocks(p string, blocks []string) {
	for j, b := range blocks {
		if !isIPOrCIDR(b) {
			v.errf(indexPath(p, j), "%q is not an IP address or CIDR; write it like 10.0.0.0/8", b)
		}
	}
}

func (v *validator) tokens(p string, ms []string) {
	for j, m := range ms {
		if !isToken(m) {
			v.errf(indexPath(p, j), "%q is not an HTTP method; write it like GET or POST", m)
		}
	}
}

func (v *validator) ports(p string, ports []string) {
	for j, s := range ports {
		if n, err := strconv.Atoi(s); err != nil || n < 1 || n > 65535 {
			v.errf(indexPath(p, j), "%q is not a port; use a number from 1 to 65535", s)
		}
	}
}

func (v *validator) limits() {
	l := v.c.Limits
	for _, f := range []struct {
		key string
		val int64
	}{
		{"maxHeaderBytes", int64(l.MaxHeaderBytes)}, {"maxHeaders", int64(l.MaxHeaders)}, {"maxBodyBytes", l.MaxBodyBytes},
		{"maxConcurrentStreams", int64(l.MaxConcurrentStreams)}, {"maxConnections", int64(l.MaxConnections)},
	} {
		if f.val < 0 {
			v.errf(childPath("limits", f.key), "%s must be positive (0 takes the default), got %d", f.key, f.val)
		}
	}
}

func (v *validator) paths() {
	v.oneOf("paths.escapedSlashes", "escapedSlashes", v.c.Paths.EscapedSlashes, escapedSlashModes)
}

func (v *validator) tracing() {
	t := v.c.Tracing
	if t.Endpoint != "" {
		if u, err := url.Parse(t.Endpoint); err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			v.errf("tracing.endpoint", "%q is not an http:// or https:// URL with a host: write the collector's OTLP/HTTP base address, e.g. http://127.0.0.1:4318 (leave it empty to disable tracing)", t.Endpoint)
		}
	}
	if r := t.SampleRatio; r != nil && !(*r >= 0 && *r <= 1) {
		v.errf("tracing.sampleRatio", "sampleRatio must be between 0 and 1 (0.01 records 1 in 100 new traces), got %g", *r)
	}
	if t.MetricsInterval > 0 && t.Endpoint == "" {
		v.errf("tracing.metricsInterval", "pushing metrics needs tracing.endpoint: set the collector's OTLP/HTTP base address, e.g. http://127.0.0.1:4318, or remove metricsInterval")
	}
}

// negativeDurations reports every Duration below zero, wherever it is. Parse
// rejects them already; this catches configurations built in code.
func (v *validator) negativeDurations(val reflect.Value, path string) {
	switch val.Kind() {
	case reflect.Pointer:
		if !val.IsNil() {
			v.negativeDurations(val.Elem(), path)
		}
	case reflect.Slice:
		if val.Type().Elem().Kind() == reflect.String {
			return // a pool's endpoints: no duration there, and no path to build for each
		}
		for i := range val.Len() {
			v.negativeDurations(val.Index(i), indexPath(path, i))
		}
	case reflect.Struct:
		t := val.Type()
		for i := range t.NumField() {
			if name := yamlName(t.Field(i)); name != "" {
				v.negativeDurations(val.Field(i), childPath(path, name))
			}
		}
	case reflect.Int64:
		if val.Type() == durationType && val.Int() < 0 {
			v.errf(path, "%s is negative: write 0 or a positive duration like 30s", Duration(val.Int()).D())
		}
	}
}

// listenAddrProblem checks a host:port to listen on (empty host and port 0 allowed).
func listenAddrProblem(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not host:port; write it like 127.0.0.1:8080, [::1]:8080 or :8080", addr)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Sprintf("%q has an invalid host; write it like 127.0.0.1:8080", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("%q has an invalid port; use a number from 0 to 65535", addr)
	}
	return ""
}

// upstreamAddrProblem checks a host:port to dial (host and port required).
func upstreamAddrProblem(addr string) string {
	if strings.Contains(addr, "://") {
		return fmt.Sprintf("%q has a scheme; write host:port only, like 10.0.0.11:8000 (use tls for https)", addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || strings.ContainsAny(host, " /") {
		return fmt.Sprintf("%q is not host:port; write it like 10.0.0.11:8000 or vllm.internal:8000", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("%q has an invalid port; use a number from 1 to 65535", addr)
	}
	return ""
}

func isIPOrCIDR(s string) bool {
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// isToken reports whether s is an RFC 9110 token (header names, methods).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHostname accepts a DNS name, optionally starting with "*.", or an IP.
func validHostname(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i] | 0x20
			if !(c >= 'a' && c <= 'z' || label[i] >= '0' && label[i] <= '9' || label[i] == '-') {
				return false
			}
		}
	}
	return true
}
