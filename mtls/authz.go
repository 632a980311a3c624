package mtls

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/kvgate/kvgate/config"
)

// AuthzRequest is what a policy can see of one request. The zero value is an anonymous
// request with no headers.
type AuthzRequest struct {
	// Principal is the verified peer SPIFFE ID (spiffe://TD/PATH, as PeerID returns it);
	// "" means anonymous, which no principals or namespaces pattern matches.
	Principal string
	// SourceIP is the client address; invalid means unknown, which no ipBlock matches.
	SourceIP netip.Addr
	// Host is the request's :authority / Host, with or without a port.
	Host   string
	Method string
	// Path is the request path (what Istio's `paths` match), without the query.
	Path string
	// Port is the local port the request arrived on.
	Port int
	// Header returns a request header value by case-insensitive name; nil means no headers.
	Header func(name string) (string, bool)
}

// Reason says why a Decision was taken.
type Reason uint8

const (
	// NoPolicy: no policy applies to the route and pool; allowed.
	NoPolicy Reason = iota
	// AllowMatched: the named ALLOW policy matched; allowed.
	AllowMatched
	// DenyMatched: the named DENY policy matched; denied.
	DenyMatched
	// NoAllowMatched: ALLOW policies apply but none matched; denied (Policy is "").
	NoAllowMatched
)

func (r Reason) String() string {
	switch r {
	case NoPolicy:
		return "no-policy"
	case AllowMatched:
		return "allow"
	case DenyMatched:
		return "deny"
	case NoAllowMatched:
		return "no-allow-match"
	}
	return "unknown"
}

// Decision is the result of Authorizer.Check.
type Decision struct {
	Allowed bool
	// Policy names the policy that decided; "" for NoPolicy and NoAllowMatched.
	Policy string
	Reason Reason
}

// Authorizer is a compiled, immutable set of AuthorizationPolicies. Safe for concurrent use;
// Check does no I/O and does not allocate.
type Authorizer struct {
	deny, allow []policy
}

type policy struct {
	name          string
	routes, pools []string
	rules         []rule
}

type rule struct {
	from []source
	to   []operation
	when []condition
}

type source struct {
	principals, notPrincipals strMatches
	namespaces, notNamespaces strMatches
	ipBlocks, notIPBlocks     prefixes
}

type operation struct {
	hosts, notHosts     strMatches
	methods, notMethods strMatches
	paths, notPaths     strMatches
	ports, notPorts     ports
}

type condKind uint8

const (
	condHeader condKind = iota
	condSourceIP
	condSourcePrincipal
	condSourceNamespace
	condDestinationPort
)

type condition struct {
	kind              condKind
	header            string
	values, notValues strMatches
	ips, notIPs       prefixes
	ports, notPorts   ports
}

// Check decides one request on route (a route name) and pool (the chosen pool's name, ""
// when none yet). Istio semantics: a policy applies when its routes and pools are empty or
// name these; any applying DENY policy that matches denies; otherwise, if any ALLOW policy
// applies, the request must match one of them; with no applying policy it is allowed.
// A nil *Authorizer allows everything.
func (a *Authorizer) Check(route string, pool string, r *AuthzRequest) Decision {
	if a == nil {
		return Decision{Allowed: true, Reason: NoPolicy}
	}
	v := view{r: r, principal: strings.TrimPrefix(r.Principal, "spiffe://")}
	v.namespace = namespaceOf(v.principal)
	for i := range a.deny {
		p := &a.deny[i]
		if p.applies(route, pool) && p.matches(&v) {
			return Decision{Allowed: false, Policy: p.name, Reason: DenyMatched}
		}
	}
	applied := false
	for i := range a.allow {
		p := &a.allow[i]
		if !p.applies(route, pool) {
			continue
		}
		applied = true
		if p.matches(&v) {
			return Decision{Allowed: true, Policy: p.name, Reason: AllowMatched}
		}
	}
	if applied {
		return Decision{Allowed: false, Reason: NoAllowMatched}
	}
	return Decision{Allowed: true, Reason: NoPolicy}
}

// view is a request with its derived fields computed once.
type view struct {
	r         *AuthzRequest
	principal string // without spiffe://
	namespace string
}

func (v *view) header(name string) (string, bool) {
	if v.r.Header == nil {
		return "", false
	}
	return v.r.Header(name)
}

// namespaceOf returns NAME from a principal holding /ns/NAME/ (or ending in /ns/NAME).
func namespaceOf(principal string) string {
	i := strings.Index(principal, "/ns/")
	if i < 0 {
		return ""
	}
	rest := principal[i+len("/ns/"):]
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

func (p *policy) applies(route, pool string) bool {
	return (len(p.routes) == 0 || slices.Contains(p.routes, route)) &&
		(len(p.pools) == 0 || slices.Contains(p.pools, pool))
}

func (p *policy) matches(v *view) bool {
	for i := range p.rules {
		if p.rules[i].matches(v) {
			return true
		}
	}
	return false
}

func (r *rule) matches(v *view) bool {
	if len(r.from) > 0 && !anyOf(r.from, v, (*source).matches) {
		return false
	}
	if len(r.to) > 0 && !anyOf(r.to, v, (*operation).matches) {
		return false
	}
	for i := range r.when {
		if !r.when[i].matches(v) {
			return false
		}
	}
	return true
}

func anyOf[T any](xs []T, v *view, match func(*T, *view) bool) bool {
	for i := range xs {
		if match(&xs[i], v) {
			return true
		}
	}
	return false
}

func (s *source) matches(v *view) bool {
	return s.principals.in(v.principal) && s.notPrincipals.out(v.principal) &&
		s.namespaces.in(v.namespace) && s.notNamespaces.out(v.namespace) &&
		s.ipBlocks.in(v.r.SourceIP) && s.notIPBlocks.out(v.r.SourceIP)
}

func (o *operation) matches(v *view) bool {
	r := v.r
	return o.hosts.inHost(r.Host) && o.notHosts.outHost(r.Host) &&
		o.methods.in(r.Method) && o.notMethods.out(r.Method) &&
		o.paths.in(r.Path) && o.notPaths.out(r.Path) &&
		o.ports.in(r.Port) && o.notPorts.out(r.Port)
}

func (c *condition) matches(v *view) bool {
	switch c.kind {
	case condHeader:
		val, ok := v.header(c.header)
		if !ok {
			// A missing header matches no value: `values` fails, `notValues` holds.
			return len(c.values) == 0
		}
		return c.values.in(val) && c.notValues.out(val)
	case condSourceIP:
		return c.ips.in(v.r.SourceIP) && c.notIPs.out(v.r.SourceIP)
	case condSourcePrincipal:
		return c.values.in(v.principal) && c.notValues.out(v.principal)
	case condSourceNamespace:
		return c.values.in(v.namespace) && c.notValues.out(v.namespace)
	case condDestinationPort:
		return c.ports.in(v.r.Port) && c.notPorts.out(v.r.Port)
	}
	return false
}

// strMatch is one Istio string pattern: exact, "prefix*", "*suffix" or "*" (any non-empty).
type strMatch struct {
	kind uint8 // 0 exact, 1 prefix, 2 suffix, 3 any
	s    string
}

func (m strMatch) match(s string) bool {
	switch m.kind {
	case 1:
		return strings.HasPrefix(s, m.s)
	case 2:
		return strings.HasSuffix(s, m.s)
	case 3:
		return s != ""
	}
	return s == m.s
}

// strMatches is a list of patterns: in reports "empty list or any pattern matches", out
// reports "no pattern matches". A pattern never matches "" (an absent value).
type strMatches []strMatch

func (ms strMatches) any(s string) bool {
	if s == "" {
		return false
	}
	for _, m := range ms {
		if m.match(s) {
			return true
		}
	}
	return false
}

func (ms strMatches) in(s string) bool  { return len(ms) == 0 || ms.any(s) }
func (ms strMatches) out(s string) bool { return !ms.any(s) }

// inHost and outHost match case-insensitively, with or without the request's port.
func (ms strMatches) anyHost(host string) bool {
	if ms.any(host) {
		return true
	}
	if h, _, ok := strings.Cut(host, ":"); ok && !strings.HasPrefix(host, "[") {
		return ms.any(h)
	}
	if i := strings.LastIndex(host, "]:"); i > 0 {
		return ms.any(host[:i+1])
	}
	return false
}

func (ms strMatches) inHost(host string) bool {
	return len(ms) == 0 || ms.anyHost(strings.ToLower(host))
}
func (ms strMatches) outHost(host string) bool {
	return len(ms) == 0 || !ms.anyHost(strings.ToLower(host))
}

type prefixes []netip.Prefix

func (ps prefixes) any(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (ps prefixes) in(ip netip.Addr) bool  { return len(ps) == 0 || ps.any(ip) }
func (ps prefixes) out(ip netip.Addr) bool { return !ps.any(ip) }

type ports []int

func (ps ports) in(p int) bool  { return len(ps) == 0 || slices.Contains(ps, p) }
func (ps ports) out(p int) bool { return !slices.Contains(ps, p) }

// CompileAuthz checks and compiles policies. Every problem is reported, each prefixed with
// its key path (authorization[I].rules[J].from[K].ipBlocks[L]) and a fix; the errors are
// joined. An empty list compiles to an Authorizer that allows everything.
func CompileAuthz(policies []config.AuthorizationPolicy) (*Authorizer, error) {
	c := &compiler{}
	a := &Authorizer{}
	for i := range policies {
		p, deny := c.policy(fmt.Sprintf("authorization[%d]", i), &policies[i])
		if deny {
			a.deny = append(a.deny, p)
		} else {
			a.allow = append(a.allow, p)
		}
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	return a, nil
}

type compiler struct{ errs []error }

func (c *compiler) fail(path, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s: "+format, append([]any{path}, args...)...))
}

func (c *compiler) policy(path string, in *config.AuthorizationPolicy) (policy, bool) {
	p := policy{name: in.Name, routes: in.Routes, pools: in.Pools}
	if p.name == "" {
		p.name = path
	}
	deny := false
	switch in.Action {
	case "", "ALLOW":
	case "DENY":
		deny = true
	case "AUDIT", "CUSTOM":
		c.fail(path+".action", "%s is not supported; use ALLOW or DENY", in.Action)
	default:
		c.fail(path+".action", "%q is not an action; write ALLOW or DENY", in.Action)
	}
	for j := range in.Rules {
		p.rules = append(p.rules, c.rule(fmt.Sprintf("%s.rules[%d]", path, j), &in.Rules[j]))
	}
	return p, deny
}

func (c *compiler) rule(path string, in *config.AuthzRule) rule {
	var r rule
	for k, f := range in.From {
		fp := fmt.Sprintf("%s.from[%d]", path, k)
		s := source{
			principals:    c.principals(fp+".principals", f.Principals),
			notPrincipals: c.principals(fp+".notPrincipals", f.NotPrincipals),
			namespaces:    c.strings(fp+".namespaces", f.Namespaces, false),
			notNamespaces: c.strings(fp+".notNamespaces", f.NotNamespaces, false),
			ipBlocks:      c.prefixes(fp+".ipBlocks", f.IPBlocks),
			notIPBlocks:   c.prefixes(fp+".notIpBlocks", f.NotIPBlocks),
		}
		if len(f.Principals)+len(f.NotPrincipals)+len(f.Namespaces)+len(f.NotNamespaces)+len(f.IPBlocks)+len(f.NotIPBlocks) == 0 {
			c.fail(fp, "is empty; give it principals, namespaces or ipBlocks (or their not- forms), or remove it")
		}
		r.from = append(r.from, s)
	}
	for k, t := range in.To {
		tp := fmt.Sprintf("%s.to[%d]", path, k)
		o := operation{
			hosts:      c.strings(tp+".hosts", lower(t.Hosts), false),
			notHosts:   c.strings(tp+".notHosts", lower(t.NotHosts), false),
			methods:    c.strings(tp+".methods", t.Methods, false),
			notMethods: c.strings(tp+".notMethods", t.NotMethods, false),
			paths:      c.strings(tp+".paths", t.Paths, true),
			notPaths:   c.strings(tp+".notPaths", t.NotPaths, true),
			ports:      c.ports(tp+".ports", t.Ports),
			notPorts:   c.ports(tp+".notPorts", t.NotPorts),
		}
		if len(t.Hosts)+len(t.NotHosts)+len(t.Methods)+len(t.NotMethods)+len(t.Paths)+len(t.NotPaths)+len(t.Ports)+len(t.NotPorts) == 0 {
			c.fail(tp, "is empty; give it hosts, methods, paths or ports (or their not- forms), or remove it")
		}
		r.to = append(r.to, o)
	}
	for k := range in.When {
		r.when = append(r.when, c.condition(fmt.Sprintf("%s.when[%d]", path, k), &in.When[k]))
	}
	return r
}

const supportedKeys = "request.headers[NAME], source.ip, source.principal, source.namespace, destination.port"

func (c *compiler) condition(path string, in *config.AuthzCondition) condition {
	var cond condition
	if len(in.Values)+len(in.NotValues) == 0 {
		c.fail(path, "has neither values nor notValues; give it one")
	}
	switch key := in.Key; {
	case strings.HasPrefix(key, "request.headers[") && strings.HasSuffix(key, "]"):
		cond.kind = condHeader
		cond.header = key[len("request.headers[") : len(key)-1]
		if cond.header == "" {
			c.fail(path+".key", "%q names no header; write it like request.headers[x-user]", key)
		}
		cond.values = c.strings(path+".values", in.Values, false)
		cond.notValues = c.strings(path+".notValues", in.NotValues, false)
	case key == "source.ip":
		cond.kind = condSourceIP
		cond.ips = c.prefixes(path+".values", in.Values)
		cond.notIPs = c.prefixes(path+".notValues", in.NotValues)
	case key == "source.principal":
		cond.kind = condSourcePrincipal
		cond.values = c.principals(path+".values", in.Values)
		cond.notValues = c.principals(path+".notValues", in.NotValues)
	case key == "source.namespace":
		cond.kind = condSourceNamespace
		cond.values = c.strings(path+".values", in.Values, false)
		cond.notValues = c.strings(path+".notValues", in.NotValues, false)
	case key == "destination.port":
		cond.kind = condDestinationPort
		cond.ports = c.ports(path+".values", in.Values)
		cond.notPorts = c.ports(path+".notValues", in.NotValues)
	case strings.HasPrefix(key, "request.auth."):
		c.fail(path+".key", "%q is not supported: kvgate does not validate request JWTs; supported keys: %s", key, supportedKeys)
	case key == "":
		c.fail(path+".key", "is empty; supported keys: %s", supportedKeys)
	default:
		c.fail(path+".key", "%q is not supported; supported keys: %s", key, supportedKeys)
	}
	return cond
}

// principals accepts Istio's form (cluster.local/ns/NS/sa/SA) and tolerates spiffe://.
func (c *compiler) principals(path string, in []string) strMatches {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.TrimPrefix(s, "spiffe://")
	}
	return c.strings(path, out, false)
}

func (c *compiler) strings(path string, in []string, isPath bool) strMatches {
	var out strMatches
	for i, s := range in {
		m, err := parsePattern(s)
		if err != nil {
			c.fail(fmt.Sprintf("%s[%d]", path, i), "%q %v", s, err)
			continue
		}
		if isPath && m.kind != 3 && m.kind != 2 && !strings.HasPrefix(m.s, "/") {
			c.fail(fmt.Sprintf("%s[%d]", path, i), "%q does not start with /; write it like /v1/*", s)
		}
		out = append(out, m)
	}
	return out
}

func parsePattern(s string) (strMatch, error) {
	switch {
	case s == "":
		return strMatch{}, errors.New("is empty; write a value, prefix*, *suffix or *")
	case s == "*":
		return strMatch{kind: 3}, nil
	case strings.Count(s, "*") > 1 || (strings.Contains(s, "*") && !strings.HasPrefix(s, "*") && !strings.HasSuffix(s, "*")):
		return strMatch{}, errors.New("has a * that is not alone, leading or trailing; only exact, prefix*, *suffix and * are supported")
	case strings.HasSuffix(s, "*"):
		return strMatch{kind: 1, s: s[:len(s)-1]}, nil
	case strings.HasPrefix(s, "*"):
		return strMatch{kind: 2, s: s[1:]}, nil
	}
	return strMatch{s: s}, nil
}

func (c *compiler) prefixes(path string, in []string) prefixes {
	var out prefixes
	for i, s := range in {
		p, err := parseIPBlock(s)
		if err != nil {
			c.fail(fmt.Sprintf("%s[%d]", path, i), "%v", err)
			continue
		}
		out = append(out, p)
	}
	return out
}

// parseIPBlock reads a CIDR or a bare IP (a one-address block).
func parseIPBlock(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR; write it like %s", s, cidrHint(s))
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR; write it like 10.1.2.3 or 10.0.0.0/8", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// cidrHint suggests a fix for an IPv4 CIDR written with too few octets ("10.0.0/8" →
// "10.0.0.0/8"), or shows the general form.
func cidrHint(s string) string {
	addr, bits, _ := strings.Cut(s, "/")
	if n := strings.Count(addr, "."); n < 3 && !strings.Contains(addr, ":") {
		if _, err := strconv.Atoi(bits); err == nil {
			fixed := addr + strings.Repeat(".0", 3-n) + "/" + bits
			if _, err := netip.ParsePrefix(fixed); err == nil {
				return fixed
			}
		}
	}
	return "10.0.0.0/8 or fd00::/8"
}

func (c *compiler) ports(path string, in []string) ports {
	var out ports
	for i, s := range in {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			c.fail(fmt.Sprintf("%s[%d]", path, i), "%q is not a port number; write it like 8443", s)
			continue
		}
		out = append(out, n)
	}
	return out
}

func lower(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(s)
	}
	return out
}
