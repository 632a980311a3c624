package router

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestReplacePrefixMatch ports the Gateway API ReplacePrefixMatch table
// (HTTPPathModifier docs) and the HTTPRouteRewritePath conformance cases.
func TestReplacePrefixMatch(t *testing.T) {
	for _, tc := range []struct{ path, prefix, replace, want string }{
		{"/foo/bar", "/foo", "/xyz", "/xyz/bar"},
		{"/foo/bar", "/foo", "/xyz/", "/xyz/bar"},
		{"/foo/bar", "/foo/", "/xyz", "/xyz/bar"},
		{"/foo/bar", "/foo/", "/xyz/", "/xyz/bar"},
		{"/foo", "/foo", "/xyz", "/xyz"},
		{"/foo/", "/foo", "/xyz", "/xyz/"},
		{"/foo/bar", "/foo", "", "/bar"},
		{"/foo/", "/foo", "", "/"},
		{"/foo", "/foo", "", "/"},
		{"/foo/", "/foo", "/", "/"},
		{"/foo", "/foo", "/", "/"},
		{"/prefix/one/two", "/prefix/one", "/one", "/one/two"},
		{"/strip-prefix/three", "/strip-prefix", "/", "/three"},
		{"/anything", "/", "/base", "/base/anything"},
	} {
		tab := compileYAML(t, `
routes:
  - name: r
    matches: [{path: {type: PathPrefix, value: "`+tc.prefix+`"}}]
    filters: [{urlRewrite: {hostname: upstream.internal, path: {type: ReplacePrefixMatch, replacePrefixMatch: "`+tc.replace+`"}}}]
    backends: [{pool: a}]
`)
		m := tab.MatchFull("", get("x", tc.path))
		if m.Route == nil {
			t.Fatalf("%s did not match prefix %s", tc.path, tc.prefix)
		}
		rw := m.Route.Filters.Rewrite
		if got := rw.RewritePath(tc.path, m); got != tc.want {
			t.Errorf("path %s prefix %q replace %q: got %q, want %q", tc.path, tc.prefix, tc.replace, got, tc.want)
		}
		if rw.Hostname != "upstream.internal" {
			t.Errorf("hostname rewrite %q", rw.Hostname)
		}
	}
}

func TestReplaceFullPathAndRegex(t *testing.T) {
	tab := compileYAML(t, `
routes:
  - name: full
    matches: [{path: {value: /full}}]
    filters: [{urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /one}}}]
    backends: [{pool: a}]
  - name: re
    matches: [{path: {type: RegularExpression, value: /re/.*}}]
    filters: [{urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /x}}}]
    backends: [{pool: a}]
`)
	for _, tc := range []struct{ path, want string }{
		{"/full/rest", "/one"},
		{"/full", "/one"},
		{"/re/abc", "/re/abc"}, // a prefix replacement needs a prefix match
	} {
		m := tab.MatchFull("", get("x", tc.path))
		if got := m.Route.Filters.Rewrite.RewritePath(tc.path, m); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.path, got, tc.want)
		}
	}
}

// TestRedirectLocation ports HTTPRouteRedirectHostAndStatus, RedirectPath,
// RedirectPortAndScheme and RedirectScheme conformance expectations.
func TestRedirectLocation(t *testing.T) {
	for _, tc := range []struct {
		name, filter string
		scheme       string
		port         int
		path, query  string
		want         string
		code         int
	}{
		{"hostname and default code", `{hostname: example.org}`, "http", 80, "/hostname-redirect", "", "http://example.org/hostname-redirect", 302},
		{"status 301", `{hostname: example.org, statusCode: 301}`, "http", 80, "/x", "", "http://example.org/x", 301},
		{"listener port kept", `{hostname: example.org}`, "http", 8080, "/x", "", "http://example.org:8080/x", 302},
		{"scheme https drops listener port", `{scheme: https}`, "http", 8080, "/x", "", "https://req.example/x", 302},
		{"scheme https with port 443", `{scheme: https, port: 443}`, "http", 80, "/", "", "https://req.example/", 302},
		{"scheme https with port 8443", `{scheme: https, port: 8443}`, "http", 80, "/", "", "https://req.example:8443/", 302},
		{"port only, http", `{port: 8080}`, "http", 80, "/", "", "http://req.example:8080/", 302},
		{"port 80 on https keeps it", `{port: 80}`, "https", 443, "/", "", "https://req.example:80/", 302},
		{"scheme http from https", `{scheme: http}`, "https", 443, "/", "", "http://req.example/", 302},
		{"full path", `{path: {type: ReplaceFullPath, replaceFullPath: /full-path-replacement}}`, "http", 80, "/full/path/original", "", "http://req.example/full-path-replacement", 302},
		{"prefix path", `{path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}}`, "http", 80, "/original-prefix/lemon", "", "http://req.example/replacement-prefix/lemon", 302},
		{"query kept", `{hostname: example.org, statusCode: 308}`, "https", 443, "/q", "a=1&b=2", "https://example.org/q?a=1&b=2", 308},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := compileYAML(t, `
routes:
  - name: r
    matches: [{path: {value: /original-prefix}}, {path: {value: /}}]
    filters: [{requestRedirect: `+tc.filter+`}]
`)
			m := tab.MatchFull("", get("req.example", tc.path))
			rd := m.Route.Filters.Redirect
			loc, code := rd.Location(RedirectRequest{Scheme: tc.scheme, Host: "req.example", ListenerPort: tc.port, Path: tc.path, RawQuery: tc.query}, m)
			if loc != tc.want || code != tc.code {
				t.Errorf("got %s %d, want %s %d", loc, code, tc.want, tc.code)
			}
		})
	}
}

func TestRedirectIPv6Host(t *testing.T) {
	rd := &Redirect{Scheme: "https", StatusCode: 302}
	loc, _ := rd.Location(RedirectRequest{Scheme: "http", Host: "::1", ListenerPort: 80, Path: "/"}, MatchResult{})
	if loc != "https://[::1]/" {
		t.Errorf("got %s", loc)
	}
}

// editor records header edits in order.
type editor struct{ ops []string }

func (e *editor) Set(n, v string) { e.ops = append(e.ops, "set "+n+"="+v) }
func (e *editor) Add(n, v string) { e.ops = append(e.ops, "add "+n+"="+v) }
func (e *editor) Del(n string)    { e.ops = append(e.ops, "del "+n) }

var _ HeaderEditor = (*editor)(nil)

func TestHeaderModifiers(t *testing.T) {
	tab := compileYAML(t, `
routes:
  - name: r
    filters:
      - requestHeaderModifier: {set: [{name: X-Header-Set, value: set-overwrites-values}], add: [{name: X-Header-Add, value: add-appends-values}], remove: [X-Header-Remove]}
      - type: RequestHeaderModifier
        requestHeaderModifier: {add: [{name: x-second, value: "2"}]}
      - responseHeaderModifier: {set: [{name: Server, value: kvgate}]}
    backends:
      - pool: a
        filters: [{requestHeaderModifier: {set: [{name: x-backend, value: a}]}}]
`)
	rt := tab.Route("r")
	var req, resp, be editor
	rt.Filters.RequestHeaders.Apply(&req)
	rt.Filters.ResponseHeaders.Apply(&resp)
	rt.Backends[0].Filters.RequestHeaders.Apply(&be)
	wantReq := []string{"set x-header-set=set-overwrites-values", "add x-header-add=add-appends-values", "add x-second=2", "del x-header-remove"}
	if !slices.Equal(req.ops, wantReq) {
		t.Errorf("request ops %q, want %q", req.ops, wantReq)
	}
	if !slices.Equal(resp.ops, []string{"set server=kvgate"}) || !slices.Equal(be.ops, []string{"set x-backend=a"}) {
		t.Errorf("response ops %q, backend ops %q", resp.ops, be.ops)
	}
	var none editor
	(*HeaderModifier)(nil).Apply(&none)
	if len(none.ops) != 0 || rt.Backends[0].Filters.ResponseHeaders != nil {
		t.Error("nil modifier edited headers, or an absent filter compiled to one")
	}
}

func TestMirrorPercent(t *testing.T) {
	tab := compileYAML(t, `
routes:
  - name: r
    filters: [{requestMirror: {pool: shadow, percent: 25}}, {requestMirror: {pool: all}}]
    backends: [{pool: a}]
`)
	ms := tab.Route("r").Filters.Mirrors
	if len(ms) != 2 || ms[0].Pool != "shadow" || ms[1].Percent != 100 {
		t.Fatalf("mirrors %+v", ms)
	}
	rng := rand.New(rand.NewPCG(9, 10))
	n, hit := 4000, 0
	for range n {
		if ms[0].ShouldMirror(rng.Uint64()) {
			hit++
		}
		if !ms[1].ShouldMirror(rng.Uint64()) {
			t.Fatal("100% mirror skipped a request")
		}
	}
	if got := float64(hit) / float64(n); math.Abs(got-0.25) > 0.03 {
		t.Errorf("mirrored %.3f, want 0.25 ± 0.03", got)
	}
	if tab.Route("r").Filters.Empty() || !tab.Route("r").Backends[0].Filters.Empty() {
		t.Error("Empty is wrong for the route's or the backend's filters")
	}
}
