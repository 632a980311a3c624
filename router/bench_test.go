package router

import "testing"

// BenchmarkMatch1000 matches requests against 1,000 routes of mixed shapes
// (exact and wildcard hosts, exact/prefix/regex paths, headers, methods,
// query, model), cycling through one request per route plus two misses.
func BenchmarkMatch1000(b *testing.B) {
	tab, reqs := bigTable(b, 1000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tab.MatchFull("public", reqs[i])
		i++
		if i == len(reqs) {
			i = 0
		}
	}
}

// BenchmarkMatchCanary is the common case: two routes, a header canary and a
// weighted default, and the pick that follows.
func BenchmarkMatchCanary(b *testing.B) {
	tab := compileYAML(b, `
routes:
  - name: qa-canary
    hostnames: ["api.example.com"]
    matches: [{path: {type: PathPrefix, value: /v1/}, headers: [{name: x-canary, value: "true"}]}]
    backends: [{pool: agent-v2}]
  - name: default
    matches: [{path: {type: PathPrefix, value: /}}]
    backends: [{pool: agent-v1, weight: 95}, {pool: agent-v2, weight: 5}]
`)
	r := get("api.example.com", "/v1/chat/completions")
	b.ReportAllocs()
	var rnd uint64
	for b.Loop() {
		rnd += 0x9e3779b97f4a7c15
		tab.Match("", r).PickBackend(0, rnd)
	}
}
