package adapt

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/kvgate/kvgate/config"
)

// gwInfo is one Gateway and its converted listeners.
type gwInfo struct {
	res       Resource
	listeners []*gwListenerInfo
}

// gwListenerInfo is one Gateway listener; kv is the kvgate listener that
// serves it ("" when it could not be converted).
type gwListenerInfo struct {
	name      string
	kv        string
	hostname  string
	port      int
	protocol  string
	secret    string
	fromAll   bool // allowedRoutes.namespaces.from All (or Selector)
	noHTTP    bool // allowedRoutes.kinds excludes HTTPRoute
	namespace string
}

func (a *adapter) gateway(res Resource, g *gatewayDoc) {
	info := &gwInfo{res: res}
	a.gateways = append(a.gateways, info)
	a.gwByKey[res.Namespace+"/"+res.Name] = info
	if len(g.Spec.Listeners) == 0 {
		a.warn(res, "spec.listeners", "no listeners; the Gateway serves nothing")
	}
	for i := range g.Spec.Listeners {
		info.listeners = append(info.listeners, a.gwListener(res, fmt.Sprintf("spec.listeners[%d]", i), &g.Spec.Listeners[i]))
	}
}

func (a *adapter) gwListener(res Resource, path string, l *gwListener) *gwListenerInfo {
	li := &gwListenerInfo{name: l.Name, hostname: strings.ToLower(l.Hostname), port: l.Port, protocol: l.Protocol, namespace: res.Namespace}
	if ar := l.AllowedRoutes; ar != nil {
		if ns := ar.Namespaces; ns != nil {
			switch ns.From {
			case "", "Same":
			case "All":
				li.fromAll = true
			default:
				li.fromAll = true
				a.warn(res, path+".allowedRoutes.namespaces.from", "%s is not supported; routes from every namespace may attach", ns.From)
			}
		}
		if len(ar.Kinds) > 0 {
			li.noHTTP = !slices.ContainsFunc(ar.Kinds, func(k struct {
				Group *string `yaml:"group"`
				Kind  string  `yaml:"kind"`
			}) bool {
				return k.Kind == "HTTPRoute" && deref(k.Group, groupGateway) == groupGateway
			})
		}
	}
	if l.Protocol != "HTTP" && l.Protocol != "HTTPS" {
		a.warn(res, path+".protocol", "%q is not supported (kvgate serves HTTP and HTTPS); listener %s ignored", l.Protocol, l.Name)
		return li
	}
	if l.Port < 1 || l.Port > 65535 {
		a.warn(res, path+".port", "%d is not a port (1 to 65535); listener %s ignored", l.Port, l.Name)
		return li
	}
	var tls *config.ListenerTLS
	if l.Protocol == "HTTPS" {
		var ok bool
		if tls, ok = a.listenerTLS(res, path+".tls", l); !ok {
			return li
		}
		li.secret = tls.CertFile
	} else if l.TLS != nil {
		a.warn(res, path+".tls", "ignored on an HTTP listener (plaintext)")
	}
	name := res.Name + "-" + l.Name
	addr := net.JoinHostPort(a.opts.Bind, strconv.Itoa(l.Port))
	if o, ok := a.opts.Listen[name]; ok {
		addr = o
	}
	if first, ok := a.byAddress[addr]; ok {
		switch {
		case first.protocol != l.Protocol:
			a.warn(res, path, "listener %s (%s) shares address %s with %s listener %s; one address serves one protocol; ignored", l.Name, l.Protocol, addr, first.protocol, first.kv)
			return li
		case first.secret != li.secret:
			a.warn(res, path+".tls.certificateRefs", "listener %s shares address %s with listener %s, and kvgate serves one certificate per address: clients of %s get the certificate of %s", l.Name, addr, first.kv, orAny(l.Hostname), first.kv)
		}
		li.kv = first.kv
		return li
	}
	li.kv = a.unique("listeners", res.Namespace, name)
	a.byAddress[addr] = li
	a.cfg.Listeners = append(a.cfg.Listeners, config.Listener{Name: li.kv, Address: addr, TLS: tls})
	a.listenerFrom = append(a.listenerFrom, res)
	return li
}

func orAny(h string) string {
	if h == "" {
		return "any hostname"
	}
	return h
}

// listenerTLS maps an HTTPS listener's certificate Secret to files.
func (a *adapter) listenerTLS(res Resource, path string, l *gwListener) (*config.ListenerTLS, bool) {
	t := l.TLS
	switch {
	case t == nil:
		a.warn(res, path, "an HTTPS listener needs tls with certificateRefs; listener %s ignored", l.Name)
		return nil, false
	case t.Mode != "" && t.Mode != "Terminate":
		a.warn(res, path+".mode", "%s is not supported (kvgate terminates TLS); listener %s ignored", t.Mode, l.Name)
		return nil, false
	}
	var secret *objRef
	for i := range t.CertificateRefs {
		r := &t.CertificateRefs[i]
		p := fmt.Sprintf("%s.certificateRefs[%d]", path, i)
		switch {
		case deref(r.Kind, "Secret") != "Secret" || deref(r.Group, "") != "":
			a.warn(res, p, "kind %s is not supported (only Secret); ignored", deref(r.Kind, "Secret"))
		case secret != nil:
			a.warn(res, p, "kvgate serves one certificate per listener; Secret %s ignored", r.Name)
		default:
			secret = r
		}
	}
	if secret == nil {
		a.warn(res, path+".certificateRefs", "no Secret to serve; listener %s ignored", l.Name)
		return nil, false
	}
	ns := secret.Namespace
	if ns == "" {
		ns = res.Namespace
	}
	if a.opts.Live && ns != res.Namespace && !a.granted(res, ns, "", "Secret", secret.Name) {
		a.warn(res, path+".certificateRefs", "no ReferenceGrant in namespace %s lets Gateway %s/%s use Secret %s/%s; listener %s ignored", ns, res.Namespace, res.Name, ns, secret.Name, l.Name)
		return nil, false
	}
	files, ok := a.opts.Certs[ns+"/"+secret.Name]
	if !ok {
		files, ok = a.opts.Certs[secret.Name]
	}
	if !ok && a.opts.Live {
		a.warn(res, path+".certificateRefs", "Secret %s/%s is missing or holds no valid tls.crt and tls.key; listener %s ignored until it does", ns, secret.Name, l.Name)
		return nil, false
	}
	if !ok {
		files = CertFiles{Cert: "secrets/" + secret.Name + "/tls.crt", Key: "secrets/" + secret.Name + "/tls.key"}
		a.warn(res, path+".certificateRefs", "no --cert for Secret %s/%s: using %s and %s (a mounted Secret's layout, relative to kvgate's working directory); pass --cert %s=CERT,KEY", ns, secret.Name, files.Cert, files.Key, secret.Name)
	}
	return &config.ListenerTLS{CertFile: files.Cert, KeyFile: files.Key}, true
}

// attachment is one kvgate listener a route is served on, with the
// hostnames it answers there (nil: any).
type attachment struct {
	listener string
	hosts    []string
}

func (a *adapter) httpRoute(res Resource, r *routeDoc) {
	hosts := make([]string, len(r.Spec.Hostnames))
	for i, h := range r.Spec.Hostnames {
		hosts[i] = strings.ToLower(h)
	}
	var atts []attachment
	if len(a.gateways) == 0 && !a.opts.Live {
		atts = []attachment{{hosts: hosts}}
	}
	for j := range r.Spec.ParentRefs {
		atts = append(atts, a.parent(res, fmt.Sprintf("spec.parentRefs[%d]", j), &r.Spec.ParentRefs[j], hosts)...)
	}
	if len(atts) == 0 {
		a.warn(res, "spec.parentRefs", "the route attaches to no listener in the input; ignored")
		return
	}
	groups := groupAttachments(atts)
	for i := range r.Spec.Rules {
		rule := &r.Spec.Rules[i]
		path := fmt.Sprintf("spec.rules[%d]", i)
		rt, ok := a.rule(res, path, rule)
		if !ok {
			continue
		}
		base := res.Name + "-" + strconv.Itoa(i)
		if rule.Name != "" {
			base = res.Name + "-" + rule.Name
		}
		for _, g := range groups {
			out := rt
			name := base
			if len(groups) > 1 {
				name = base + "-" + g.listeners[0]
			}
			out.Name = a.unique("routes", res.Namespace, name)
			out.Listeners = g.listeners
			out.Hostnames = g.hosts
			a.cfg.Routes = append(a.cfg.Routes, out)
			a.routeFrom = append(a.routeFrom, res)
			a.baseRoutes[out.Name] = true
		}
	}
}

// parent resolves one parentRef to the listeners that accept the route.
func (a *adapter) parent(res Resource, path string, p *parentRef, hosts []string) []attachment {
	kind, group := deref(p.Kind, "Gateway"), deref(p.Group, groupGateway)
	if kind != "Gateway" || group != groupGateway {
		a.warn(res, path, "parent kind %s (group %q) is not supported (only Gateway); ignored", kind, group)
		return nil
	}
	ns := p.Namespace
	if ns == "" {
		ns = res.Namespace
	}
	gw, ok := a.gwByKey[ns+"/"+p.Name]
	if !ok {
		a.warn(res, path, "Gateway %s/%s is not in the input; ignored", ns, p.Name)
		return nil
	}
	var out []attachment
	for _, l := range gw.listeners {
		if (p.SectionName != "" && l.name != p.SectionName) || (p.Port != 0 && l.port != p.Port) ||
			l.protocol != "HTTP" && l.protocol != "HTTPS" || l.noHTTP || (!l.fromAll && l.namespace != res.Namespace) {
			continue
		}
		h, ok := intersectHosts(l.hostname, hosts)
		if !ok {
			continue
		}
		// Attached, in Gateway API's sense (attachedRoutes), even where
		// the listener or the route is not valid.
		a.attach(ns+"/"+p.Name+"/"+l.name, res)
		if l.kv != "" {
			out = append(out, attachment{listener: l.kv, hosts: h})
		}
	}
	if len(out) == 0 {
		a.warn(res, path, "no listener of Gateway %s/%s accepts this route (sectionName, port, protocol, hostname or allowedRoutes differ); ignored", ns, p.Name)
	}
	return out
}

// attach records that route res is attached to a Gateway listener
// ("namespace/gateway/listener"), once however many parentRefs select it.
func (a *adapter) attach(listener string, res Resource) {
	routes := a.attached[listener]
	if routes == nil {
		routes = map[string]bool{}
		a.attached[listener] = routes
	}
	routes[res.Namespace+"/"+res.Name] = true
}

// intersectHosts is the Gateway API hostname intersection of a listener
// hostname and a route's hostnames; nil means any, ok false means none.
func intersectHosts(listener string, route []string) ([]string, bool) {
	if listener == "" {
		return route, true
	}
	if len(route) == 0 {
		return []string{listener}, true
	}
	var out []string
	for _, h := range route {
		if m := intersectHost(listener, h); m != "" && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, len(out) > 0
}

func intersectHost(a, b string) string {
	switch {
	case a == b:
		return a
	case wildcardMatches(a, b):
		return b
	case wildcardMatches(b, a):
		return a
	}
	return ""
}

// wildcardMatches reports whether "*.suffix" w covers h (one or more labels).
func wildcardMatches(w, h string) bool {
	return strings.HasPrefix(w, "*.") && strings.HasSuffix(h, w[1:]) && len(h) > len(w)-1
}

// routeGroup is the listeners that serve one rule with the same hostnames.
type routeGroup struct {
	listeners []string
	hosts     []string
}

// groupAttachments merges attachments per listener (hostnames unioned, any
// wins), then groups listeners that answer the same hostnames, so that each
// group becomes one kvgate route.
func groupAttachments(atts []attachment) []routeGroup {
	var order []string
	per := map[string][]string{}
	anyHost := map[string]bool{}
	for _, at := range atts {
		if _, seen := per[at.listener]; !seen && !anyHost[at.listener] {
			order = append(order, at.listener)
		}
		if at.hosts == nil {
			anyHost[at.listener] = true
			per[at.listener] = nil
			continue
		}
		if !anyHost[at.listener] {
			for _, h := range at.hosts {
				if !slices.Contains(per[at.listener], h) {
					per[at.listener] = append(per[at.listener], h)
				}
			}
		}
	}
	var groups []routeGroup
	index := map[string]int{}
	for _, l := range order {
		hs := per[l]
		key := "\x00any"
		if !anyHost[l] {
			sorted := slices.Clone(hs)
			sort.Strings(sorted)
			key = strings.Join(sorted, ",")
		}
		if i, ok := index[key]; ok {
			groups[i].listeners = append(groups[i].listeners, l)
			continue
		}
		index[key] = len(groups)
		var lst []string
		if l != "" {
			lst = []string{l}
		}
		groups = append(groups, routeGroup{listeners: lst, hosts: hs})
	}
	return groups
}

// rule converts one HTTPRoute rule, without name, listeners and hostnames.
func (a *adapter) rule(res Resource, path string, rule *routeRule) (config.Route, bool) {
	var rt config.Route
	for _, m := range rule.Matches {
		cm := config.Match{Path: m.Path, Method: m.Method, Headers: m.Headers, QueryParams: m.QueryParams}
		if cm.Path != nil && cm.Path.Value == "" {
			cm.Path.Value = "/"
		}
		rt.Matches = append(rt.Matches, cm)
	}
	rt.Filters = a.filters(res, path+".filters", rule.Filters)
	redirect := slices.ContainsFunc(rt.Filters, func(f config.Filter) bool { return f.RequestRedirect != nil })
	for k := range rule.BackendRefs {
		br := &rule.BackendRefs[k]
		bp := fmt.Sprintf("%s.backendRefs[%d]", path, k)
		pool, why := a.resolveBackend(res, bp, br)
		if pool == "" {
			a.warn(res, bp, "%s; backend dropped, so its weight share goes to the other backends (Gateway API would answer that share with 500)", why)
			continue
		}
		rt.Backends = append(rt.Backends, config.Backend{Pool: pool, Weight: br.Weight, Filters: a.filters(res, bp+".filters", br.Filters)})
	}
	switch {
	case redirect:
		rt.Backends = nil // a redirect answers by itself
	case len(rule.BackendRefs) == 0:
		a.warn(res, path, "a rule without backendRefs answers 500 in Gateway API; kvgate has no such route, so the rule is dropped (its requests fall to other routes or 404)")
		return rt, false
	case len(rt.Backends) == 0:
		a.warn(res, path, "no backend of this rule could be resolved, so Gateway API would answer 500; the rule is dropped (its requests fall to other routes or 404)")
		return rt, false
	case !slices.ContainsFunc(rt.Backends, func(b config.Backend) bool { return b.Weight == nil || *b.Weight > 0 }):
		a.warn(res, path, "every backend weight is 0, so Gateway API would answer 500; the rule is dropped (its requests fall to other routes or 404)")
		return rt, false
	}
	if t := rule.Timeouts; t != nil {
		rt.Timeouts = &config.Timeouts{}
		if t.Request != nil {
			rt.Timeouts.Request = *t.Request
		}
		if t.BackendRequest != nil {
			rt.Timeouts.BackendRequest = *t.BackendRequest
		}
	}
	if r := rule.Retry; r != nil {
		rt.Retry = &config.Retry{Attempts: 1, Codes: r.Codes, Backoff: r.Backoff}
		if r.Attempts != nil {
			rt.Retry.Attempts = *r.Attempts
		}
	}
	return rt, true
}

// filters converts Gateway API filters; those kvgate lacks are warned and dropped.
func (a *adapter) filters(res Resource, path string, fs []routeFilter) []config.Filter {
	var out []config.Filter
	for i := range fs {
		f := &fs[i]
		p := fmt.Sprintf("%s[%d]", path, i)
		var cf config.Filter
		switch f.Type {
		case "RequestHeaderModifier":
			cf.RequestHeaderModifier = f.RequestHeaderModifier
		case "ResponseHeaderModifier":
			cf.ResponseHeaderModifier = f.ResponseHeaderModifier
		case "URLRewrite":
			cf.URLRewrite = f.URLRewrite
		case "RequestRedirect":
			cf.RequestRedirect = f.RequestRedirect
		case "RequestMirror":
			cf.RequestMirror = a.mirror(res, p, f)
			if cf.RequestMirror == nil {
				continue
			}
		default:
			a.warn(res, p, "filter type %q is not supported; ignored", f.Type)
			continue
		}
		if cf == (config.Filter{}) {
			a.warn(res, p, "type %s names a field that is not set; ignored", f.Type)
			continue
		}
		out = append(out, cf)
	}
	return out
}

func (a *adapter) mirror(res Resource, p string, f *routeFilter) *config.RequestMirror {
	m := f.RequestMirror
	if m == nil {
		a.warn(res, p, "type RequestMirror without requestMirror; ignored")
		return nil
	}
	pool, why := a.resolveBackend(res, p+".requestMirror.backendRef", &m.BackendRef)
	if pool == "" {
		a.warn(res, p+".requestMirror.backendRef", "%s; the mirror is dropped", why)
		return nil
	}
	if m.BackendRef.Weight != nil || len(m.BackendRef.Filters) > 0 {
		a.warn(res, p+".requestMirror.backendRef", "weight and filters mean nothing on a mirror; ignored")
	}
	cm := &config.RequestMirror{Pool: pool}
	switch {
	case m.Percent != nil:
		cm.Percent = float64(*m.Percent)
	case m.Fraction != nil:
		den := 100
		if m.Fraction.Denominator != nil {
			den = *m.Fraction.Denominator
		}
		if den <= 0 {
			a.warn(res, p+".requestMirror.fraction.denominator", "must be positive; the mirror is dropped")
			return nil
		}
		cm.Percent = 100 * float64(m.Fraction.Numerator) / float64(den)
	}
	if m.Percent != nil && *m.Percent == 0 || m.Fraction != nil && m.Fraction.Numerator == 0 {
		return nil // mirrors nothing
	}
	return cm
}
