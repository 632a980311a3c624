package router

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unsafe"

	"github.com/kvgate/kvgate/config"
)

// Table is the compiled, immutable route table of one configuration.
// All methods are safe for concurrent use; none of them allocates.
type Table struct {
	routes     []*Route
	byName     map[string]*Route
	byListener map[string]*listenerTable
	// unlisted serves listener names the config does not declare: it holds
	// only the routes attached to every listener.
	unlisted *listenerTable
}

// MatchResult says which route took a request and how its path matched.
// The zero value (Route == nil) means no route matched: answer 404.
type MatchResult struct {
	// Route is the winning route; nil when none matched.
	Route *Route
	// Match is the index of the winning entry in the route's config matches
	// (0 for a route declared without matches).
	Match int
	// PathType is how the path matched.
	PathType PathType
	// Prefix is the matched path prefix when PathType is PathPrefix, with
	// trailing slashes removed ("" for the prefix "/"). For PathExact it is
	// the exact path, also without trailing slashes. URLRewrite and Redirect
	// use it for ReplacePrefixMatch.
	Prefix string
}

// PathType is the kind of a path match.
type PathType uint8

// The path match kinds, in Gateway API precedence order within one hostname.
const (
	PathExact PathType = iota
	PathPrefix
	PathRegularExpression
)

// String returns the Gateway API spelling.
func (p PathType) String() string {
	switch p {
	case PathExact:
		return "Exact"
	case PathPrefix:
		return "PathPrefix"
	default:
		return "RegularExpression"
	}
}

// listenerTable resolves a hostname to a chain of host groups, most specific
// first: the exact hostname, then matching wildcards from longest to
// shortest, then routes without hostnames.
type listenerTable struct {
	exact map[string][]*group // lowercase hostname
	wild  map[string][]*group // wildcard suffix without "*.", lowercase
	any   []*group
}

// group holds the match entries of one hostname key, indexed by path.
type group struct {
	exact      map[string][]*entry // exact path
	prefix     map[string][]*entry // normalized prefix ("" is "/")
	maxPrefix  int                 // longest key in prefix
	exactLens  lenSet              // lengths of the keys of exact
	prefixLens lenSet              // lengths of the keys of prefix
	regex      []*entry
}

// lenSet records which key lengths a path map holds, so most candidate
// lookups are skipped without hashing. Lengths of 255 and more are always
// looked up.
type lenSet [4]uint64

func (s *lenSet) add(n int) {
	if n < 255 {
		s[n/64] |= 1 << (n % 64)
	}
}

func (s *lenSet) has(n int) bool {
	return n >= 255 || s[n/64]&(1<<(n%64)) != 0
}

// Compile builds a Table from a validated, defaulted config (config.Default
// and config.Validate have already run). It substitutes no default of its
// own: an unset backend weight, redirect status or mirror percent is an
// error, and retry settings are used as given (see compileRetry). It still
// reports what it cannot compile, such as a regular expression RE2 rejects,
// naming the route and the key to fix.
func Compile(c *config.Config) (*Table, error) {
	t := &Table{byName: make(map[string]*Route, len(c.Routes)), byListener: map[string]*listenerTable{}}
	var entries []*entry
	for i := range c.Routes {
		r, es, err := compileRoute(&c.Routes[i], i)
		if err != nil {
			return nil, err
		}
		t.routes = append(t.routes, r)
		if r.Name != "" {
			t.byName[r.Name] = r
		}
		entries = append(entries, es...)
	}
	names := map[string]bool{}
	for _, l := range c.Listeners {
		names[l.Name] = true
	}
	for _, r := range t.routes {
		for _, l := range r.Listeners {
			names[l] = true
		}
	}
	for name := range names {
		t.byListener[name] = buildListener(entries, func(r *Route) bool {
			return len(r.Listeners) == 0 || slices.Contains(r.Listeners, name)
		})
	}
	t.unlisted = buildListener(entries, func(r *Route) bool { return len(r.Listeners) == 0 })
	return t, nil
}

// Routes returns the compiled routes in definition order. The slice is shared: do not modify it.
func (t *Table) Routes() []*Route { return t.routes }

// Route returns the route with this name, or nil.
func (t *Table) Route(name string) *Route { return t.byName[name] }

// Match returns the route for a request arriving on a listener, or nil (answer 404).
func (t *Table) Match(listener string, r Request) *Route {
	return t.MatchFull(listener, r).Route
}

// MatchFull is Match that also says which match of the route won and the
// path prefix it matched (for ReplacePrefixMatch rewrites and redirects).
func (t *Table) MatchFull(listener string, r Request) MatchResult {
	lt := t.listener(listener)
	chain := lt.chain(r.Host())
	if len(chain) == 0 {
		return MatchResult{}
	}
	path := r.Path()
	if path == "" {
		path = "/"
	}
	for _, g := range chain {
		if e := g.match(path, r); e != nil {
			return MatchResult{Route: e.route, Match: e.match, PathType: e.kind, Prefix: e.prefix}
		}
	}
	return MatchResult{}
}

func (t *Table) listener(name string) *listenerTable {
	if lt := t.byListener[name]; lt != nil {
		return lt
	}
	return t.unlisted
}

// chain finds the host groups for a request host, lowercasing it and
// stripping a port and trailing dot without allocating.
func (lt *listenerTable) chain(host string) []*group {
	host = stripHostPort(host)
	if !hasUpper(host) {
		return lt.lookup(host)
	}
	if len(host) > 256 {
		return lt.lookup(string(asciiLower(make([]byte, len(host)), host)))
	}
	var buf [256]byte
	asciiLower(buf[:len(host)], host)
	// The string aliases buf only for the map lookups below, which do not keep it.
	return lt.lookup(unsafe.String(&buf[0], len(host)))
}

// asciiLower writes s lowercased (ASCII letters only) into dst, len(dst) == len(s).
func asciiLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst[i] = c
	}
	return dst
}

func (lt *listenerTable) lookup(host string) []*group {
	if gs, ok := lt.exact[host]; ok {
		return gs
	}
	if len(lt.wild) > 0 {
		// i starts at 1: a wildcard needs at least one leading character.
		for i := 1; i < len(host); i++ {
			if host[i] == '.' {
				if gs, ok := lt.wild[host[i+1:]]; ok {
					return gs
				}
			}
		}
	}
	return lt.any
}

func stripHostPort(h string) string {
	if len(h) > 0 && h[0] == '[' {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[:i+1]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		h = h[:i]
	}
	for len(h) > 1 && h[len(h)-1] == '.' {
		h = h[:len(h)-1]
	}
	return h
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// match returns the first entry of the group that matches, in precedence
// order: exact path, longest prefix, regular expressions.
func (g *group) match(path string, r Request) *entry {
	if g.exactLens.has(len(path)) {
		if es, ok := g.exact[path]; ok {
			if e := firstMatch(es, r); e != nil {
				return e
			}
		}
	}
	if len(g.prefix) > 0 {
		if len(path) <= g.maxPrefix && g.prefixLens.has(len(path)) {
			if es, ok := g.prefix[path]; ok {
				if e := firstMatch(es, r); e != nil {
					return e
				}
			}
		}
		for i := min(len(path)-1, g.maxPrefix); i >= 0; i-- {
			if path[i] != '/' || !g.prefixLens.has(i) {
				continue
			}
			if es, ok := g.prefix[path[:i]]; ok {
				if e := firstMatch(es, r); e != nil {
					return e
				}
			}
		}
	}
	for _, e := range g.regex {
		if e.re.MatchString(path) && e.conds(r) {
			return e
		}
	}
	return nil
}

func firstMatch(es []*entry, r Request) *entry {
	for _, e := range es {
		if e.conds(r) {
			return e
		}
	}
	return nil
}

// buildListener indexes the entries of the routes keep accepts.
func buildListener(all []*entry, keep func(*Route) bool) *listenerTable {
	lt := &listenerTable{exact: map[string][]*group{}, wild: map[string][]*group{}}
	exact := map[string]*group{}
	wild := map[string]*group{}
	anyG := newGroup()
	for _, e := range all {
		if !keep(e.route) {
			continue
		}
		if len(e.route.Hostnames) == 0 {
			anyG.add(e)
			continue
		}
		for _, h := range e.route.Hostnames {
			m, key := exact, h
			if suffix, ok := strings.CutPrefix(h, "*."); ok {
				m, key = wild, suffix
			}
			g := m[key]
			if g == nil {
				g = newGroup()
				m[key] = g
			}
			g.add(e)
		}
	}
	for _, g := range exact {
		g.finish()
	}
	for _, g := range wild {
		g.finish()
	}
	anyG.finish()
	if !anyG.empty() {
		lt.any = []*group{anyG}
	}
	// wildChain lists, for a host, the wildcard groups that match it, longest suffix first.
	// from is 1 for a hostname (a wildcard needs a leading character) and 0
	// for a wildcard suffix (its own "*" is that character).
	wildChain := func(host string, from int) []*group {
		var gs []*group
		for i := from; i < len(host); i++ {
			if host[i] == '.' {
				if g, ok := wild[host[i+1:]]; ok {
					gs = append(gs, g)
				}
			}
		}
		return append(gs, lt.any...)
	}
	for h, g := range exact {
		lt.exact[h] = append([]*group{g}, wildChain(h, 1)...)
	}
	for s, g := range wild {
		lt.wild[s] = append([]*group{g}, wildChain(s, 0)...)
	}
	return lt
}

func newGroup() *group {
	return &group{exact: map[string][]*entry{}, prefix: map[string][]*entry{}}
}

func (g *group) add(e *entry) {
	switch e.kind {
	case PathExact:
		g.exact[e.path] = append(g.exact[e.path], e)
		g.exactLens.add(len(e.path))
	case PathPrefix:
		g.prefix[e.path] = append(g.prefix[e.path], e)
		g.maxPrefix = max(g.maxPrefix, len(e.path))
		g.prefixLens.add(len(e.path))
	default:
		g.regex = append(g.regex, e)
	}
}

func (g *group) empty() bool {
	return len(g.exact) == 0 && len(g.prefix) == 0 && len(g.regex) == 0
}

// finish sorts every bucket by Gateway API precedence.
func (g *group) finish() {
	for _, es := range g.exact {
		slices.SortStableFunc(es, compareEntries)
	}
	for _, es := range g.prefix {
		slices.SortStableFunc(es, compareEntries)
	}
	slices.SortStableFunc(g.regex, compareEntries)
}

// compareEntries orders entries that share a hostname and a path key:
// method present, more header matches, more query matches, model present,
// then definition order.
func compareEntries(a, b *entry) int {
	if c := cmp.Compare(b2i(b.method != ""), b2i(a.method != "")); c != 0 {
		return c
	}
	if c := cmp.Compare(len(b.headers), len(a.headers)); c != 0 {
		return c
	}
	if c := cmp.Compare(len(b.query), len(a.query)); c != 0 {
		return c
	}
	if c := cmp.Compare(b2i(b.model != nil), b2i(a.model != nil)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.route.Index, b.route.Index); c != 0 {
		return c
	}
	return cmp.Compare(a.match, b.match)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// routeError prefixes a compile error with the route it belongs to.
func routeError(r *config.Route, idx int, format string, args ...any) error {
	name := r.Name
	if name == "" {
		name = fmt.Sprintf("#%d", idx)
	}
	return fmt.Errorf("router: route %q: "+format, append([]any{name}, args...)...)
}
