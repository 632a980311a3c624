package router

import (
	"cmp"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kvgate/kvgate/config"
)

// refConfig mixes every kind of condition so that the indexed Table can be
// checked against refMatch, a direct reading of the precedence rules.
const refConfig = `
listeners:
  - {name: a, address: ":1"}
  - {name: b, address: ":2"}
routes:
  - name: r0
    hostnames: [api.example.com, "*.example.com"]
    matches:
      - {path: {type: Exact, value: /v1/models}}
      - {path: {value: /v1/}, headers: [{name: x-canary, value: "true"}]}
  - name: r1
    hostnames: ["*.example.com"]
    matches: [{path: {value: /v1}}, {path: {value: /v1/chat}, method: POST}]
  - name: r2
    hostnames: ["*.b.example.com", "API.example.com."]
    matches: [{path: {value: /}, queryParams: [{name: q, value: "1"}]}]
  - name: r3
    listeners: [a]
    hostnames: [other.org]
    matches: [{path: {type: RegularExpression, value: '/v[0-9]+/.*'}, model: {type: RegularExpression, value: 'llama.*'}}]
  - name: r4
    listeners: [b]
    matches: [{path: {value: /v1/chat}, headers: [{name: x-tier, type: RegularExpression, value: gold|silver}, {name: x-canary, value: "true"}]}]
  - name: r5
    matches: [{path: {value: /}}, {path: {type: Exact, value: /v1/chat/}, method: GET}]
  - name: r6
    hostnames: [other.org]
    matches: [{path: {value: /v1/chat/}, model: {value: qwen}}, {path: {type: RegularExpression, value: '/.*x'}}]
  - name: r7
    matches: [{path: {value: /v1/chat}, queryParams: [{name: q, type: RegularExpression, value: "[0-9]"}], method: POST}]
`

type refKey []int

// refMatch scans every route and match and keeps the best by precedence key.
func refMatch(c *config.Config, listener string, r Request) (route, match int) {
	known := map[string]bool{}
	for _, l := range c.Listeners {
		known[l.Name] = true
	}
	host := string(asciiLower(make([]byte, len(r.Host())), r.Host())) // hostnames are ASCII
	if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.Count(host, ":") == 1 {
		host = host[:i]
	}
	for len(host) > 1 && strings.HasSuffix(host, ".") {
		host = host[:len(host)-1]
	}
	path := r.Path()
	if path == "" {
		path = "/"
	}
	var best refKey
	route, match = -1, -1
	for ri, rt := range c.Routes {
		if len(rt.Listeners) > 0 && !(known[listener] && slices.Contains(rt.Listeners, listener)) {
			continue
		}
		hk, ok := refHost(rt.Hostnames, host)
		if !ok {
			continue
		}
		ms := rt.Matches
		if len(ms) == 0 {
			ms = []config.Match{{}}
		}
		for mi, m := range ms {
			pk, ok := refPath(m.Path, path)
			if !ok || !refConds(m, r) {
				continue
			}
			key := append(append(hk, pk...), -len(m.Method), -len(m.Headers), -len(m.QueryParams), refBool(m.Model == nil), ri, mi)
			if best == nil || slices.Compare(key, best) < 0 {
				best, route, match = key, ri, mi
			}
		}
	}
	return route, match
}

func refBool(b bool) int {
	if b {
		return 1
	}
	return 0
}

func refHost(names []string, host string) (refKey, bool) {
	if len(names) == 0 {
		return refKey{2, 0}, true
	}
	var best refKey
	for _, n := range names {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		var k refKey
		if s, ok := strings.CutPrefix(n, "*."); ok {
			if !strings.HasSuffix(host, "."+s) || len(host) <= len(s)+1 {
				continue
			}
			k = refKey{1, -len(s)}
		} else if n == host {
			k = refKey{0, 0}
		} else {
			continue
		}
		if best == nil || slices.Compare(k, best) < 0 {
			best = k
		}
	}
	return best, best != nil
}

func refPath(p *config.PathMatch, path string) (refKey, bool) {
	typ, val := "PathPrefix", "/"
	if p != nil {
		typ, val = cmp.Or(p.Type, typ), p.Value
	}
	switch typ {
	case "Exact":
		return refKey{0, 0}, path == val
	case "RegularExpression":
		return refKey{2, 0}, regexp.MustCompile("^(?:" + val + ")$").MatchString(path)
	}
	k := strings.TrimRight(val, "/")
	return refKey{1, -len(k)}, path == k || strings.HasPrefix(path, k+"/")
}

func refConds(m config.Match, r Request) bool {
	test := func(typ, want, got string) bool {
		if typ == "RegularExpression" {
			return regexp.MustCompile("^(?:" + want + ")$").MatchString(got)
		}
		return want == got
	}
	if m.Method != "" && strings.ToUpper(m.Method) != r.Method() {
		return false
	}
	for _, h := range m.Headers {
		v := r.Header(strings.ToLower(h.Name))
		if v == "" || !test(h.Type, h.Value, v) {
			return false
		}
	}
	for _, q := range m.QueryParams {
		v, ok := r.Query(q.Name)
		if !ok || !test(q.Type, q.Value, v) {
			return false
		}
	}
	if m.Model != nil {
		v := r.Model()
		if v == "" || !test(m.Model.Type, m.Model.Value, v) {
			return false
		}
	}
	return true
}

// FuzzMatchAgainstReference checks the indexed Table against refMatch on
// fuzzed hosts, paths, methods, headers, query parameters and models.
func FuzzMatchAgainstReference(f *testing.F) {
	f.Add(uint8(0), "api.example.com", "/v1/chat", uint8(1), uint8(0xff), uint8(1), "llama")
	f.Add(uint8(1), "x.b.Example.com:80", "/v1/", uint8(0), uint8(1), uint8(3), "")
	f.Add(uint8(2), "other.org.", "/v1/chat/x", uint8(0), uint8(0), uint8(0), "qwen")
	f.Add(uint8(0), ".example.com", "v1", uint8(2), uint8(6), uint8(2), "llama-3")
	c := mustDecode(f, refConfig)
	tab, err := Compile(c)
	if err != nil {
		f.Fatal(err)
	}
	listeners := []string{"a", "b", "c"}
	methods := []string{"GET", "POST", "PUT"}
	headers := [][2]string{{"x-canary", "true"}, {"x-tier", "gold"}, {"x-tier", "bronze"}, {"x-canary", "false"}}
	f.Fuzz(func(t *testing.T, l uint8, host, path string, method, hbits, qbits uint8, model string) {
		r := &req{host: host, path: path, method: methods[int(method)%len(methods)], model: model}
		for i, h := range headers {
			if hbits&(1<<i) != 0 {
				r.withHeader(h[0], h[1])
			}
		}
		if qbits&1 != 0 {
			r.withQuery("q", "1")
		}
		if qbits&2 != 0 {
			r.withQuery("q", "x")
		}
		listener := listeners[int(l)%len(listeners)]
		wantRoute, wantMatch := refMatch(c, listener, r)
		got := tab.MatchFull(listener, r)
		gotRoute := -1
		if got.Route != nil {
			gotRoute = got.Route.Index
		}
		if gotRoute != wantRoute || (gotRoute >= 0 && got.Match != wantMatch) {
			t.Fatalf("listener %s %s %q%q headers=%v query=%v model=%q: got route %d match %d, want route %d match %d",
				listener, r.method, host, path, r.headers, r.query, model, gotRoute, got.Match, wantRoute, wantMatch)
		}
	})
}

// TestMatchAgainstReference compares the Table with refMatch over the product
// of hosts, paths, listeners, methods, headers, query and models that the
// routes of refConfig care about.
func TestMatchAgainstReference(t *testing.T) {
	c := mustDecode(t, refConfig)
	tab, err := Compile(c)
	if err != nil {
		t.Fatal(err)
	}
	hosts := []string{"api.example.com", "API.Example.com:8080", "x.example.com", "x.b.example.com", "b.example.com",
		"example.com", "other.org", "other.org.", "nowhere", ""}
	paths := []string{"", "/", "/v1", "/v1/", "/v1/models", "/v1/models/", "/v1/chat", "/v1/chat/", "/v1/chat/x",
		"/v10", "/v2/x", "/x", "v1", "/v1//chat"}
	headerSets := [][]string{nil, {"x-canary", "true"}, {"x-tier", "gold"}, {"x-tier", "gold", "x-canary", "true"}, {"x-tier", "bronze", "x-canary", "true"}}
	querySets := [][]string{nil, {"q", "1"}, {"q", "x"}}
	wins := make([]int, len(c.Routes))
	for _, l := range []string{"a", "b", "c"} {
		for _, h := range hosts {
			for _, p := range paths {
				for _, m := range []string{"GET", "POST"} {
					for _, hs := range headerSets {
						for _, qs := range querySets {
							for _, model := range []string{"", "llama-3", "qwen"} {
								r := (&req{host: h, path: p, method: m, model: model}).withHeader(hs...).withQuery(qs...)
								wr, wm := refMatch(c, l, r)
								got := tab.MatchFull(l, r)
								gr := -1
								if got.Route != nil {
									gr = got.Route.Index
								}
								if gr != wr || (gr >= 0 && got.Match != wm) {
									t.Errorf("listener %s %s %q%q headers=%v query=%v model=%q: got route %d match %d, want route %d match %d",
										l, m, h, p, r.headers, r.query, model, gr, got.Match, wr, wm)
								}
								if gr >= 0 {
									wins[gr]++
								}
							}
						}
					}
				}
			}
		}
	}
	t.Logf("wins per route: %v", wins)
	for i, w := range wins {
		if w == 0 {
			t.Errorf("route r%d never won: the product misses its case", i)
		}
	}
}
