package router

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// The tests in this file port what Gateway API's HTTPRoute conformance suite
// checks (exact and prefix paths, headers, methods, query parameters,
// hostnames, precedence across routes), expressed in kvgate's config shape.

func TestExactPathMatching(t *testing.T) {
	tab := compileYAML(t, `
routes:
  - name: one
    matches: [{path: {type: Exact, value: /one}}]
    backends: [{pool: v1}]
  - name: two
    matches: [{path: {type: Exact, value: /two}}]
    backends: [{pool: v2}]
`)
	runMatchCases(t, tab, []matchCase{
		{"one", "", get("example.com", "/one"), "one"},
		{"two", "", get("example.com", "/two"), "two"},
		{"root", "", get("example.com", "/"), ""},
		{"below exact", "", get("example.com", "/one/example"), ""},
		{"trailing slash", "", get("example.com", "/two/"), ""},
		{"case sensitive", "", get("example.com", "/ONE"), ""},
		{"longer name", "", get("example.com", "/onex"), ""},
	})
}

func TestPathPrefixSegments(t *testing.T) {
	tab := compileYAML(t, `
routes:
  - name: root
    matches: [{path: {type: PathPrefix, value: /}}]
    backends: [{pool: v1}]
  - name: v2
    matches: [{path: {type: PathPrefix, value: /v2}}]
    backends: [{pool: v2}]
  - name: v3
    matches: [{path: {type: PathPrefix, value: /v3/}}]
    backends: [{pool: v3}]
  - name: deep
    matches: [{path: {value: /v2/models}}]
    backends: [{pool: v4}]
`)
	runMatchCases(t, tab, []matchCase{
		{"root", "", get("x", "/"), "root"},
		{"empty path reads as root", "", get("x", ""), "root"},
		{"prefix itself", "", get("x", "/v2"), "v2"},
		{"prefix with slash", "", get("x", "/v2/"), "v2"},
		{"below prefix", "", get("x", "/v2/example"), "v2"},
		{"not a segment boundary", "", get("x", "/v2example"), "root"},
		{"trailing slash in prefix ignored", "", get("x", "/v3"), "v3"},
		{"trailing slash prefix, child", "", get("x", "/v3/x/y"), "v3"},
		{"trailing slash prefix, no boundary", "", get("x", "/v3x"), "root"},
		{"longest prefix wins", "", get("x", "/v2/models/llama"), "deep"},
		{"longest prefix exact", "", get("x", "/v2/models"), "deep"},
		{"longest prefix sibling", "", get("x", "/v2/modelsx"), "v2"},
		{"double slash", "", get("x", "/v2//a"), "v2"},
	})
}

func TestRegexPathMatching(t *testing.T) {
	tab := compileYAML(t, `
routes:
  - name: models
    matches: [{path: {type: RegularExpression, value: '/(v1|v2)/models/[a-z0-9-]+'}}]
    backends: [{pool: v1}]
  - name: numbered
    matches: [{path: {type: RegularExpression, value: '/item/\d+'}}]
    backends: [{pool: v2}]
`)
	runMatchCases(t, tab, []matchCase{
		{"matches", "", get("x", "/v1/models/llama-3"), "models"},
		{"alternation", "", get("x", "/v2/models/qwen"), "models"},
		{"whole path only (suffix)", "", get("x", "/v1/models/llama/x"), ""},
		{"whole path only (prefix)", "", get("x", "/x/v1/models/a"), ""},
		{"digits", "", get("x", "/item/42"), "numbered"},
		{"not digits", "", get("x", "/item/4a"), ""},
	})
}

func TestHeaderMatching(t *testing.T) {
	tab := compileYAML(t, `
routes:
  - name: version-one
    matches: [{headers: [{name: Version, value: one}]}]
    backends: [{pool: v1}]
  - name: version-two
    matches: [{headers: [{name: version, value: two}]}]
    backends: [{pool: v2}]
  - name: two-orange
    matches: [{headers: [{name: version, value: two}, {name: color, value: orange}]}]
    backends: [{pool: v1}]
  - name: color-blue-or-green
    matches:
      - headers: [{name: color, value: blue}]
      - headers: [{name: color, value: green}]
    backends: [{pool: v1}]
  - name: canary-regex
    matches: [{headers: [{name: x-canary, type: RegularExpression, value: 'true|yes'}]}]
    backends: [{pool: v2}]
`)
	h := func(kv ...string) *req { return get("x", "/").withHeader(kv...) }
	runMatchCases(t, tab, []matchCase{
		{"exact one", "", h("version", "one"), "version-one"},
		{"exact two", "", h("version", "two"), "version-two"},
		{"more headers win", "", h("version", "two", "color", "orange"), "two-orange"},
		{"extra header still matches fewer", "", h("version", "one", "color", "orange"), "version-one"},
		{"ORed matches, first", "", h("color", "blue"), "color-blue-or-green"},
		{"ORed matches, second", "", h("color", "green"), "color-blue-or-green"},
		{"value case sensitive", "", h("version", "ONE"), ""},
		{"unknown value", "", h("version", "three"), ""},
		{"no headers", "", h(), ""},
		{"regex yes", "", h("x-canary", "yes"), "canary-regex"},
		{"regex whole value", "", h("x-canary", "yesno"), ""},
	})
}

func TestMethodMatching(t *testing.T) {
	tab := compileYAML(t, `
routes:
  - name: get
    matches: [{method: GET}]
    backends: [{pool: v1}]
  - name: post
    matches: [{method: post, path: {value: /v1}}]
    backends: [{pool: v2}]
`)
	m := func(method, path string) *req { return &req{host: "x", method: method, path: path} }
	runMatchCases(t, tab, []matchCase{
		{"GET", "", m("GET", "/"), "get"},
		{"POST on /v1", "", m("POST", "/v1/chat"), "post"},
		{"GET on /v1 falls to the GET route", "", m("GET", "/v1/chat"), "get"},
		{"POST elsewhere", "", m("POST", "/"), ""},
		{"HEAD", "", m("HEAD", "/"), ""},
	})
}

func TestQueryParamMatching(t *testing.T) {
	tab := compileYAML(t, `
routes:
  - name: whale
    matches: [{queryParams: [{name: animal, value: whale}]}]
    backends: [{pool: v1}]
  - name: dolphin
    matches: [{queryParams: [{name: animal, value: dolphin}]}]
    backends: [{pool: v2}]
  - name: dolphin-blue
    matches: [{queryParams: [{name: animal, value: dolphin}, {name: color, value: blue}]}]
    backends: [{pool: v3}]
  - name: regex
    matches: [{queryParams: [{name: id, type: RegularExpression, value: '[0-9]+'}]}]
    backends: [{pool: v3}]
`)
	q := func(kv ...string) *req { return get("x", "/").withQuery(kv...) }
	runMatchCases(t, tab, []matchCase{
		{"whale", "", q("animal", "whale"), "whale"},
		{"dolphin", "", q("animal", "dolphin"), "dolphin"},
		{"more params win", "", q("animal", "dolphin", "color", "blue"), "dolphin-blue"},
		{"other color", "", q("animal", "dolphin", "color", "red"), "dolphin"},
		{"regex", "", q("id", "123"), "regex"},
		{"regex whole value", "", q("id", "12a"), ""},
		{"absent", "", q(), ""},
		{"present but empty", "", q("animal", ""), ""},
	})
}

func TestHostnameMatching(t *testing.T) {
	tab := compileYAML(t, `
routes:
  - name: specific
    hostnames: [very.specific.com]
    matches: [{path: {value: /s}}]
    backends: [{pool: v1}]
  - name: wildcard
    hostnames: ["*.wildcard.io"]
    backends: [{pool: v2}]
  - name: deeper-wildcard
    hostnames: ["*.b.wildcard.io"]
    backends: [{pool: v3}]
  - name: exact-in-wildcard
    hostnames: ["Exact.Wildcard.io."]
    matches: [{path: {value: /only}}]
    backends: [{pool: v1}]
  - name: any
    matches: [{path: {type: Exact, value: /any}}]
    backends: [{pool: v4}]
`)
	runMatchCases(t, tab, []matchCase{
		{"exact host", "", get("very.specific.com", "/s"), "specific"},
		{"exact host, case and port", "", get("Very.Specific.COM:8443", "/s/x"), "specific"},
		{"exact host trailing dot", "", get("very.specific.com.", "/s"), "specific"},
		{"exact host, no rule: any-host route", "", get("very.specific.com", "/any"), "any"},
		{"exact host, nothing", "", get("very.specific.com", "/other"), ""},
		{"wildcard one label", "", get("foo.wildcard.io", "/"), "wildcard"},
		{"wildcard many labels", "", get("a.c.wildcard.io", "/"), "wildcard"},
		{"wildcard not the apex", "", get("wildcard.io", "/"), ""},
		{"longer wildcard wins", "", get("x.b.wildcard.io", "/"), "deeper-wildcard"},
		{"longer wildcard wins, deeper", "", get("y.x.b.wildcard.io", "/"), "deeper-wildcard"},
		{"exact beats wildcard even with a shorter path", "", get("exact.wildcard.io", "/only"), "exact-in-wildcard"},
		{"exact falls back to wildcard", "", get("exact.wildcard.io", "/elsewhere"), "wildcard"},
		{"wildcard falls back to any", "", get("foo.wildcard.io", "/any"), "wildcard"},
		{"no host routes", "", get("other.org", "/any"), "any"},
		{"suffix without dot boundary", "", get("notwildcard.io", "/"), ""},
		{"uppercase wildcard host", "", get("FOO.WILDCARD.IO", "/"), "wildcard"},
	})
}

// TestPrecedence checks Gateway API precedence: hostname, then Exact path,
// then longest prefix, then regex, then method, then header count, then
// query count, then definition order.
func TestPrecedence(t *testing.T) {
	tab := compileYAML(t, `
routes:
  - name: first-prefix
    matches: [{path: {value: /p}}]
    backends: [{pool: a}]
  - name: second-prefix-same
    matches: [{path: {value: /p/}}]
    backends: [{pool: a}]
  - name: regex
    matches: [{path: {type: RegularExpression, value: '/p/.*'}, method: GET, headers: [{name: a, value: "1"}, {name: b, value: "1"}]}]
    backends: [{pool: a}]
  - name: exact
    matches: [{path: {type: Exact, value: /p/exact}}]
    backends: [{pool: a}]
  - name: longer-prefix
    matches: [{path: {value: /p/long}}]
    backends: [{pool: a}]
  - name: query
    matches: [{path: {value: /p/long}, queryParams: [{name: q, value: "1"}]}]
    backends: [{pool: a}]
  - name: headers
    matches: [{path: {value: /p/long}, headers: [{name: h, value: "1"}], queryParams: [{name: q, value: "1"}]}]
    backends: [{pool: a}]
  - name: two-headers
    matches: [{path: {value: /p/long}, headers: [{name: h, value: "1"}, {name: i, value: "1"}]}]
    backends: [{pool: a}]
  - name: method
    matches: [{path: {value: /p/long}, method: PUT}]
    backends: [{pool: a}]
  - name: host
    hostnames: [h.example]
    matches: [{path: {value: /}}]
    backends: [{pool: a}]
`)
	r := func(method, path string) *req { return &req{host: "x", method: method, path: path} }
	runMatchCases(t, tab, []matchCase{
		{"definition order breaks ties", "", r("GET", "/p/a"), "first-prefix"},
		{"exact beats every prefix", "", r("GET", "/p/exact").withHeader("a", "1", "b", "1"), "exact"},
		{"longest prefix beats regex with more conditions", "", r("GET", "/p/long").withHeader("a", "1", "b", "1"), "longer-prefix"},
		{"prefix beats regex", "", r("GET", "/p/zzz").withHeader("a", "1", "b", "1"), "first-prefix"},
		{"query beats none", "", r("GET", "/p/long").withQuery("q", "1"), "query"},
		{"header beats query", "", r("GET", "/p/long").withQuery("q", "1").withHeader("h", "1"), "headers"},
		{"more headers beat fewer headers plus query", "", r("GET", "/p/long").withQuery("q", "1").withHeader("h", "1", "i", "1"), "two-headers"},
		{"method beats headers", "", r("PUT", "/p/long").withQuery("q", "1").withHeader("h", "1", "i", "1"), "method"},
		{"specific hostname first", "", &req{host: "h.example", method: "PUT", path: "/p/exact"}, "host"},
	})
}

func TestListeners(t *testing.T) {
	tab := compileYAML(t, `
listeners:
  - {name: public, address: ":1"}
  - {name: internal, address: ":2"}
routes:
  - name: public-only
    listeners: [public]
    matches: [{path: {value: /v1}}]
    backends: [{pool: a}]
  - name: everywhere
    backends: [{pool: b}]
`)
	runMatchCases(t, tab, []matchCase{
		{"public", "public", get("x", "/v1/chat"), "public-only"},
		{"internal skips public route", "internal", get("x", "/v1/chat"), "everywhere"},
		{"unknown listener gets unrestricted routes", "nope", get("x", "/v1/chat"), "everywhere"},
	})
}

func TestNoRoutes(t *testing.T) {
	tab := compileYAML(t, `routes: []`)
	if rt := tab.Match("", get("x", "/")); rt != nil {
		t.Fatalf("matched %q in an empty table", rt.Name)
	}
}

func TestModelMatching(t *testing.T) {
	tab := compileYAML(t, `
listeners:
  - {name: ai, address: ":1"}
  - {name: web, address: ":2"}
routes:
  - name: llama
    listeners: [ai]
    matches: [{path: {value: /v1}, model: {value: llama-3-8b}}]
    backends: [{pool: a}]
  - name: qwen-family
    listeners: [ai]
    matches: [{path: {value: /v1}, method: POST, model: {type: RegularExpression, value: 'qwen.*'}}]
    backends: [{pool: b}]
  - name: fallback
    backends: [{pool: c}]
`)
	post := func(path, model string) *req { return &req{host: "x", method: "POST", path: path, model: model} }
	runMatchCases(t, tab, []matchCase{
		{"exact model", "ai", post("/v1/chat/completions", "llama-3-8b"), "llama"},
		{"regex model", "ai", post("/v1/chat/completions", "qwen2.5-7b"), "qwen-family"},
		{"other model", "ai", post("/v1/chat/completions", "mistral"), "fallback"},
		{"no model", "ai", post("/v1/chat/completions", ""), "fallback"},
		{"model on another listener", "web", post("/v1/chat/completions", "llama-3-8b"), "fallback"},
	})
	// The body is read only once the cheaper conditions passed.
	r := &req{host: "x", method: "GET", path: "/v2", model: "qwen"}
	tab.Match("ai", r)
	if r.modelCalls != 0 {
		t.Errorf("Model called %d times for a path no model route covers", r.modelCalls)
	}
}

func TestMatchFullPrefix(t *testing.T) {
	tab := compileYAML(t, `
routes:
  - name: a
    matches: [{path: {type: Exact, value: /exact/}}, {path: {value: /pre/}}, {path: {type: RegularExpression, value: '/re.*'}}]
    backends: [{pool: a}]
`)
	for _, tc := range []struct {
		path   string
		match  int
		typ    PathType
		prefix string
	}{
		{"/exact/", 0, PathExact, "/exact"},
		{"/pre/x", 1, PathPrefix, "/pre"},
		{"/rex", 2, PathRegularExpression, ""},
	} {
		m := tab.MatchFull("", get("x", tc.path))
		if m.Route == nil || m.Match != tc.match || m.PathType != tc.typ || m.Prefix != tc.prefix {
			t.Errorf("%s: got %+v, want match %d %v prefix %q", tc.path, m, tc.match, tc.typ, tc.prefix)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"bad path regex", `routes: [{name: r, matches: [{path: {type: RegularExpression, value: "(("}}], backends: [{pool: a}]}]`, "RE2"},
		{"bad path type", `routes: [{name: r, matches: [{path: {type: Glob, value: "/"}}], backends: [{pool: a}]}]`, "path.type"},
		{"bad header regex", `routes: [{name: r, matches: [{headers: [{name: a, type: RegularExpression, value: "[" }]}], backends: [{pool: a}]}]`, "headers[0]"},
		{"bad header type", `routes: [{name: r, matches: [{headers: [{name: a, type: Prefix, value: "x" }]}], backends: [{pool: a}]}]`, "Exact or RegularExpression"},
		{"negative weight", `routes: [{name: r, backends: [{pool: a, weight: -1}]}]`, "weight"},
		{"two rewrites", `routes: [{name: r, filters: [{urlRewrite: {hostname: a}}, {urlRewrite: {hostname: b}}], backends: [{pool: a}]}]`, "second urlRewrite"},
		{"rewrite and redirect", `routes: [{name: r, filters: [{urlRewrite: {hostname: a}}, {requestRedirect: {hostname: b}}]}]`, "both"},
		{"bad status", `routes: [{name: r, filters: [{requestRedirect: {statusCode: 200}}]}]`, "statusCode"},
		{"type without field", `routes: [{name: r, filters: [{type: RequestMirror}], backends: [{pool: a}]}]`, "needs its field"},
		{"bad retry code", `routes: [{name: r, retry: {attempts: 1, codes: [42]}, backends: [{pool: a}]}]`, "code 42"},
		{"redirect on backend", `routes: [{name: r, backends: [{pool: a, filters: [{requestRedirect: {hostname: b}}]}]}]`, "route filter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c = mustDecode(t, tc.yaml)
			_, err := Compile(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), `router: route "r"`) {
				t.Fatalf("err = %v, want one naming route r and containing %q", err, tc.want)
			}
		})
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	tab, reqs := bigTable(t, 1000)
	for _, host := range []string{"", "UPPER.example"} {
		allocs := testing.AllocsPerRun(200, func() {
			for _, r := range reqs {
				if host != "" {
					r.host = host
				}
				tab.MatchFull("public", r)
			}
		})
		if allocs != 0 {
			t.Errorf("host %q: %v allocations per run of %d matches, want 0", host, allocs, len(reqs))
		}
	}
}

// TestBigTableRoutesEachRequest checks the benchmark's table: every request
// built for route i lands on route i, and the misses miss.
func TestBigTableRoutesEachRequest(t *testing.T) {
	const n = 1000
	tab, reqs := bigTable(t, n)
	for i, r := range reqs {
		want := ""
		if i < n {
			want = fmt.Sprintf("r%d", i)
		}
		got := ""
		if rt := tab.Match("public", r); rt != nil {
			got = rt.Name
		}
		if got != want {
			t.Errorf("request %d (%s %s%s): matched %q, want %q", i, r.method, r.host, r.path, got, want)
		}
	}
}

// TestTableConcurrentUse lets -race check that matching and picking only read the table.
func TestTableConcurrentUse(t *testing.T) {
	tab, reqs := bigTable(t, 200)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for _, shared := range reqs {
				r := *shared // a Request belongs to one goroutine
				if rt := tab.Match("public", &r); rt != nil {
					rt.PickBackend(rt.StickyKey(&r), 1)
				}
			}
		})
	}
	wg.Wait()
}
