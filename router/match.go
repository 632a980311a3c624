package router

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/kvgate/kvgate/config"
)

// entry is one compiled match of one route: a path test plus the conditions
// ANDed with it.
type entry struct {
	route   *Route
	match   int
	kind    PathType
	path    string // exact path, or normalized prefix ("" is "/")
	prefix  string // what MatchResult.Prefix reports
	re      *regexp.Regexp
	method  string
	headers []strCond
	query   []strCond
	model   *strCond
}

// strCond tests one string: exactly, or by an anchored RE2 expression.
type strCond struct {
	name  string // lowercase header name, or query parameter name
	value string
	re    *regexp.Regexp // nil: exact
}

func (c *strCond) test(v string) bool {
	if c.re != nil {
		return c.re.MatchString(v)
	}
	return v == c.value
}

// conds tests everything but the path. The model is read last because it may
// read the body.
func (e *entry) conds(r Request) bool {
	if e.method != "" && r.Method() != e.method {
		return false
	}
	for i := range e.headers {
		h := &e.headers[i]
		v := r.Header(h.name)
		if v == "" || !h.test(v) {
			return false
		}
	}
	for i := range e.query {
		q := &e.query[i]
		v, ok := r.Query(q.name)
		if !ok || !q.test(v) {
			return false
		}
	}
	if e.model != nil {
		m := r.Model()
		if m == "" || !e.model.test(m) {
			return false
		}
	}
	return true
}

// compileRoute compiles a config route and its match entries.
func compileRoute(c *config.Route, idx int) (*Route, []*entry, error) {
	r := &Route{
		Name:      c.Name,
		Index:     idx,
		Listeners: c.Listeners,
	}
	for _, h := range c.Hostnames {
		h = strings.TrimSuffix(h, ".")
		r.Hostnames = append(r.Hostnames, string(asciiLower(make([]byte, len(h)), h)))
	}
	if c.Timeouts != nil {
		r.Timeouts = *c.Timeouts
	}
	if c.Priority != nil {
		r.Priority = *c.Priority
	}
	var err error
	if r.Filters, err = compileFilters(c.Filters); err != nil {
		return nil, nil, routeError(c, idx, "filters: %w", err)
	}
	if r.Backends, err = compileBackends(c.Backends); err != nil {
		return nil, nil, routeError(c, idx, "%w", err)
	}
	r.initPick()
	if r.Retry, err = compileRetry(c.Retry); err != nil {
		return nil, nil, routeError(c, idx, "retry: %w", err)
	}
	if a := c.SessionAffinity; a != nil {
		r.affinityHeader = strings.ToLower(a.Header)
		r.affinityCookie = a.Cookie
	}
	matches := c.Matches
	if len(matches) == 0 {
		matches = []config.Match{{}}
	}
	entries := make([]*entry, 0, len(matches))
	for i := range matches {
		e, err := compileMatch(&matches[i])
		if err != nil {
			return nil, nil, routeError(c, idx, "matches[%d]: %w", i, err)
		}
		e.route, e.match = r, i
		entries = append(entries, e)
	}
	return r, entries, nil
}

func compileMatch(m *config.Match) (*entry, error) {
	e := &entry{kind: PathPrefix, method: strings.ToUpper(m.Method)}
	if p := m.Path; p != nil {
		switch strings.ToLower(p.Type) {
		case "", "pathprefix":
			e.kind = PathPrefix
		case "exact":
			e.kind = PathExact
		case "regularexpression":
			e.kind = PathRegularExpression
		default:
			return nil, fmt.Errorf("path.type %q is unknown: use Exact, PathPrefix or RegularExpression", p.Type)
		}
		e.path = p.Value
	}
	switch e.kind {
	case PathPrefix:
		e.path = strings.TrimRight(e.path, "/")
		e.prefix = e.path
	case PathExact:
		e.prefix = strings.TrimRight(e.path, "/")
	case PathRegularExpression:
		re, err := compileRegex(e.path)
		if err != nil {
			return nil, fmt.Errorf("path.value: %w", err)
		}
		e.re = re
	}
	for i, h := range m.Headers {
		c, err := compileCond(strings.ToLower(h.Name), h.Value, h.Type)
		if err != nil {
			return nil, fmt.Errorf("headers[%d]: %w", i, err)
		}
		e.headers = append(e.headers, c)
	}
	for i, q := range m.QueryParams {
		c, err := compileCond(q.Name, q.Value, q.Type)
		if err != nil {
			return nil, fmt.Errorf("queryParams[%d]: %w", i, err)
		}
		e.query = append(e.query, c)
	}
	if m.Model != nil {
		c, err := compileCond("model", m.Model.Value, m.Model.Type)
		if err != nil {
			return nil, fmt.Errorf("model: %w", err)
		}
		e.model = &c
	}
	return e, nil
}

func compileCond(name, value, typ string) (strCond, error) {
	c := strCond{name: name, value: value}
	switch strings.ToLower(typ) {
	case "", "exact":
	case "regularexpression":
		re, err := compileRegex(value)
		if err != nil {
			return c, err
		}
		c.re = re
	default:
		return c, fmt.Errorf("type %q is unknown: use Exact or RegularExpression", typ)
	}
	return c, nil
}

// compileRegex compiles an RE2 expression that must match the whole string.
func compileRegex(expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return nil, fmt.Errorf("%q is not an RE2 regular expression (%w): fix the expression", expr, err)
	}
	return re, nil
}
