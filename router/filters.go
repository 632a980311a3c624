package router

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/kvgate/kvgate/config"
)

// Filters are the compiled Gateway API filters of a route or a backend.
// A nil pointer or empty slice means that filter is absent. The proxy applies
// route filters first, then the chosen backend's.
type Filters struct {
	// RequestHeaders edits the request headers sent upstream.
	RequestHeaders *HeaderModifier
	// ResponseHeaders edits the response headers sent to the client.
	ResponseHeaders *HeaderModifier
	// Rewrite changes the host and path sent upstream.
	Rewrite *URLRewrite
	// Redirect answers with a redirect instead of proxying (route level only).
	Redirect *Redirect
	// Mirrors send fire-and-forget copies to other pools.
	Mirrors []Mirror
}

// Empty reports whether no filter is set.
func (f *Filters) Empty() bool {
	return f.RequestHeaders == nil && f.ResponseHeaders == nil && f.Rewrite == nil &&
		f.Redirect == nil && len(f.Mirrors) == 0
}

// HeaderEditor is the proxy's mutable view of a header set (request or
// response). Names are given lowercase; implementations compare them
// case-insensitively. Set replaces every value, Add appends one, Del removes
// every value. Used by one goroutine at a time.
type HeaderEditor interface {
	Set(name, value string)
	Add(name, value string)
	Del(name string)
}

// HeaderModifier is a compiled requestHeaderModifier or responseHeaderModifier.
type HeaderModifier struct {
	Set    []config.Header // names lowercase
	Add    []config.Header // names lowercase
	Remove []string        // lowercase
}

// Apply runs the modifier on h: every Set, then every Add, then every Remove.
// A nil modifier does nothing. It does not allocate.
func (m *HeaderModifier) Apply(h HeaderEditor) {
	if m == nil {
		return
	}
	for _, s := range m.Set {
		h.Set(s.Name, s.Value)
	}
	for _, a := range m.Add {
		h.Add(a.Name, a.Value)
	}
	for _, r := range m.Remove {
		h.Del(r)
	}
}

func (m *HeaderModifier) merge(c *config.HeaderModifier) {
	for _, s := range c.Set {
		m.Set = append(m.Set, config.Header{Name: strings.ToLower(s.Name), Value: s.Value})
	}
	for _, a := range c.Add {
		m.Add = append(m.Add, config.Header{Name: strings.ToLower(a.Name), Value: a.Value})
	}
	for _, r := range c.Remove {
		m.Remove = append(m.Remove, strings.ToLower(r))
	}
}

// PathModifier is a compiled ReplaceFullPath or ReplacePrefixMatch.
type PathModifier struct {
	// Full, when true, replaces the whole path with Value; otherwise the
	// matched prefix is replaced with Value.
	Full  bool
	Value string
}

// Apply returns the new path for a request path that matched m.
// ReplacePrefixMatch replaces the matched PathPrefix (Gateway API rules:
// trailing slashes of the prefix and of the replacement are ignored, and an
// empty result is "/"); a regular-expression match leaves the path as is.
// A nil modifier returns path unchanged.
func (p *PathModifier) Apply(path string, m MatchResult) string {
	switch {
	case p == nil:
		return path
	case p.Full:
		return p.Value
	case m.PathType == PathRegularExpression || !strings.HasPrefix(path, m.Prefix):
		return path
	}
	rest := path[len(m.Prefix):]
	out := strings.TrimRight(p.Value, "/") + rest
	if out == "" {
		return "/"
	}
	if out[0] != '/' {
		out = "/" + out
	}
	return out
}

// URLRewrite is a compiled urlRewrite filter.
type URLRewrite struct {
	// Hostname replaces the Host / :authority sent upstream; "" keeps it.
	Hostname string
	// Path rewrites the path; nil keeps it.
	Path *PathModifier
}

// RewritePath returns the upstream path for a request path that matched m
// (the query string is the proxy's to keep).
func (u *URLRewrite) RewritePath(path string, m MatchResult) string {
	return u.Path.Apply(path, m)
}

// Redirect is a compiled requestRedirect filter.
type Redirect struct {
	Scheme     string // "" keeps the request's scheme
	Hostname   string // "" keeps the request's host
	Port       int    // 0: derived (Gateway API rules)
	StatusCode int    // 301, 302, 303, 307 or 308
	Path       *PathModifier
}

// RedirectRequest is what Location needs to know about the request.
type RedirectRequest struct {
	Scheme       string // "http" or "https", as the request arrived
	Host         string // request host without port
	ListenerPort int    // port of the listener the request arrived on
	Path         string // request path, no query
	RawQuery     string // query without '?', kept in the Location
}

// Location computes the redirect target and status code, per Gateway API:
// an unset port is the well-known port of an explicitly set scheme, else the
// listener port; port 80 with http and 443 with https are left out.
func (r *Redirect) Location(req RedirectRequest, m MatchResult) (location string, code int) {
	scheme := req.Scheme
	if r.Scheme != "" {
		scheme = r.Scheme
	}
	host := req.Host
	if r.Hostname != "" {
		host = r.Hostname
	}
	port := r.Port
	if port == 0 {
		port = req.ListenerPort
		if r.Scheme != "" {
			if wk := wellKnownPort(r.Scheme); wk != 0 {
				port = wk
			}
		}
	}
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString("://")
	if strings.IndexByte(host, ':') >= 0 && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	b.WriteString(host)
	if port != 0 && port != wellKnownPort(scheme) {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(port))
	}
	b.WriteString(r.Path.Apply(req.Path, m))
	if req.RawQuery != "" {
		b.WriteByte('?')
		b.WriteString(req.RawQuery)
	}
	return b.String(), r.StatusCode
}

func wellKnownPort(scheme string) int {
	switch strings.ToLower(scheme) {
	case "http":
		return 80
	case "https":
		return 443
	}
	return 0
}

// Mirror is a compiled requestMirror filter.
type Mirror struct {
	Pool string
	// Percent of requests mirrored, in (0, 100].
	Percent   float64
	threshold uint64 // mirror when rnd < threshold
	always    bool
}

// ShouldMirror reports whether this request is mirrored, given rnd, a
// uniform random uint64 the caller supplies.
func (m *Mirror) ShouldMirror(rnd uint64) bool {
	return m.always || rnd < m.threshold
}

func newMirror(c *config.RequestMirror) (Mirror, error) {
	m := Mirror{Pool: c.Pool, Percent: c.Percent}
	if m.Pool == "" {
		return m, errors.New("requestMirror.pool is empty: name the pool to mirror to")
	}
	switch { // config.Default has set an absent percent
	case m.Percent >= 100:
		m.Percent, m.always = 100, true
	case m.Percent <= 0 || math.IsNaN(m.Percent):
		return m, fmt.Errorf("requestMirror.percent is %v: use a value in (0, 100]", c.Percent)
	default:
		m.threshold = uint64(m.Percent / 100 * (1 << 63) * 2)
	}
	return m, nil
}

func compilePathModifier(c *config.PathModifier) (*PathModifier, error) {
	if c == nil {
		return nil, nil
	}
	switch strings.ToLower(c.Type) {
	case "replacefullpath":
		return &PathModifier{Full: true, Value: c.ReplaceFullPath}, nil
	case "replaceprefixmatch":
		return &PathModifier{Value: c.ReplacePrefixMatch}, nil
	}
	return nil, fmt.Errorf("path.type %q is unknown: use ReplaceFullPath or ReplacePrefixMatch", c.Type)
}

// compileFilters compiles a filter list. Header modifiers of the same kind are
// merged in order; a second urlRewrite or requestRedirect, or both together,
// is an error (Gateway API allows one of each and not both).
func compileFilters(cs []config.Filter) (Filters, error) {
	var f Filters
	for i := range cs {
		c := &cs[i]
		typ, err := filterType(c)
		if err != nil {
			return f, fmt.Errorf("[%d]: %w", i, err)
		}
		switch typ {
		case "requestheadermodifier":
			if f.RequestHeaders == nil {
				f.RequestHeaders = &HeaderModifier{}
			}
			f.RequestHeaders.merge(c.RequestHeaderModifier)
		case "responseheadermodifier":
			if f.ResponseHeaders == nil {
				f.ResponseHeaders = &HeaderModifier{}
			}
			f.ResponseHeaders.merge(c.ResponseHeaderModifier)
		case "urlrewrite":
			if f.Rewrite != nil {
				return f, fmt.Errorf("[%d]: a second urlRewrite: merge them into one", i)
			}
			p, err := compilePathModifier(c.URLRewrite.Path)
			if err != nil {
				return f, fmt.Errorf("[%d].urlRewrite: %w", i, err)
			}
			f.Rewrite = &URLRewrite{Hostname: c.URLRewrite.Hostname, Path: p}
		case "requestredirect":
			if f.Redirect != nil {
				return f, fmt.Errorf("[%d]: a second requestRedirect: keep one", i)
			}
			rr := c.RequestRedirect
			p, err := compilePathModifier(rr.Path)
			if err != nil {
				return f, fmt.Errorf("[%d].requestRedirect: %w", i, err)
			}
			f.Redirect = &Redirect{Scheme: strings.ToLower(rr.Scheme), Hostname: rr.Hostname, Port: rr.Port, StatusCode: rr.StatusCode, Path: p}
			switch f.Redirect.StatusCode { // config.Default has set an absent one
			case 301, 302, 303, 307, 308:
			default:
				return f, fmt.Errorf("[%d].requestRedirect.statusCode %d: use 301, 302, 303, 307 or 308", i, rr.StatusCode)
			}
		case "requestmirror":
			m, err := newMirror(c.RequestMirror)
			if err != nil {
				return f, fmt.Errorf("[%d]: %w", i, err)
			}
			f.Mirrors = append(f.Mirrors, m)
		}
	}
	if f.Rewrite != nil && f.Redirect != nil {
		return f, errors.New("urlRewrite and requestRedirect cannot both be set: keep one")
	}
	return f, nil
}

// filterType returns the lowercase filter type, inferring it when omitted,
// and checks that the field for that type is set.
func filterType(c *config.Filter) (string, error) {
	set := map[string]bool{
		"requestheadermodifier":  c.RequestHeaderModifier != nil,
		"responseheadermodifier": c.ResponseHeaderModifier != nil,
		"urlrewrite":             c.URLRewrite != nil,
		"requestredirect":        c.RequestRedirect != nil,
		"requestmirror":          c.RequestMirror != nil,
	}
	typ := strings.ToLower(c.Type)
	if typ == "" {
		for k, v := range set {
			if v {
				if typ != "" {
					return "", errors.New("several filter fields are set without a type: use one filter per entry")
				}
				typ = k
			}
		}
		if typ == "" {
			return "", errors.New("no filter field is set: add one, e.g. requestHeaderModifier")
		}
		return typ, nil
	}
	v, known := set[typ]
	if !known {
		return "", fmt.Errorf("type %q is unknown: use RequestHeaderModifier, ResponseHeaderModifier, URLRewrite, RequestRedirect or RequestMirror", c.Type)
	}
	if !v {
		return "", fmt.Errorf("type %s needs its field set", c.Type)
	}
	return typ, nil
}
