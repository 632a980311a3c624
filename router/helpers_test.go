package router

import (
	"fmt"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kvgate/kvgate/config"
)

// req is a plain Request for tests. Header names are stored lowercase.
type req struct {
	host, method, path string
	headers            map[string]string
	query              map[string]string
	model              string
	modelCalls         int
}

var _ Request = (*req)(nil)

func (r *req) Host() string   { return r.host }
func (r *req) Method() string { return r.method }
func (r *req) Path() string   { return r.path }
func (r *req) Header(name string) string {
	return r.headers[name]
}
func (r *req) Query(name string) (string, bool) {
	v, ok := r.query[name]
	return v, ok
}
func (r *req) Model() string { r.modelCalls++; return r.model }

// get builds a GET request for host and path.
func get(host, path string) *req { return &req{host: host, method: "GET", path: path} }

func (r *req) withHeader(kv ...string) *req {
	if r.headers == nil {
		r.headers = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		r.headers[kv[i]] = kv[i+1]
	}
	return r
}

func (r *req) withQuery(kv ...string) *req {
	if r.query == nil {
		r.query = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		r.query[kv[i]] = kv[i+1]
	}
	return r
}

// compileYAML decodes a config fragment and compiles it.
func compileYAML(t testing.TB, src string) *Table {
	t.Helper()
	var c config.Config
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	config.Default(&c) // as config.Parse does: Compile takes defaulted configs
	tab, err := Compile(&c)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return tab
}

// matchCase is one request and the route name expected ("" for no match).
type matchCase struct {
	name     string
	listener string
	r        *req
	want     string
}

func runMatchCases(t *testing.T, tab *Table, cases []matchCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if rt := tab.Match(tc.listener, tc.r); rt != nil {
				got = rt.Name
			}
			if got != tc.want {
				t.Errorf("%s %s%s headers=%v query=%v: matched %q, want %q",
					tc.r.method, tc.r.host, tc.r.path, tc.r.headers, tc.r.query, got, tc.want)
			}
		})
	}
}

func mustDecode(t testing.TB, src string) *config.Config {
	t.Helper()
	var c config.Config
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	config.Default(&c) // as config.Parse does: Compile takes defaulted configs
	return &c
}

// bigTable builds n routes of mixed shapes (exact and wildcard hosts, exact,
// prefix and a few regex paths, headers, methods, query, model) on one
// listener, and requests that hit each shape plus some that miss.
func bigTable(t testing.TB, n int) (*Table, []*req) {
	t.Helper()
	c := &config.Config{Listeners: []config.Listener{{Name: "public"}}}
	var reqs []*req
	for i := range n {
		svc := fmt.Sprintf("svc-%d.example.com", i/10)
		r := config.Route{Name: fmt.Sprintf("r%d", i), Backends: []config.Backend{{Pool: "p"}}}
		m := config.Match{Path: &config.PathMatch{Value: fmt.Sprintf("/api/%d", i)}}
		q := &req{host: svc, method: "GET", path: fmt.Sprintf("/api/%d/chat/completions", i)}
		switch i % 10 {
		case 0:
			r.Hostnames = []string{svc}
			m.Path = &config.PathMatch{Type: "Exact", Value: fmt.Sprintf("/api/%d/exact", i)}
			q.path = m.Path.Value
		case 1:
			r.Hostnames = []string{svc}
		case 2:
			r.Hostnames = []string{svc}
			m.Headers = []config.HeaderMatch{{Name: "x-canary", Value: "true"}}
			q.withHeader("x-canary", "true")
		case 3:
			r.Hostnames = []string{fmt.Sprintf("*.t%d.example.org", i/10)}
			q.host = fmt.Sprintf("a.b.t%d.example.org", i/10)
		case 4:
			m.Method = "POST"
			q.method = "POST"
		case 5:
			if i%100 == 5 {
				m.Path = &config.PathMatch{Type: "RegularExpression", Value: fmt.Sprintf(`/re%d/[0-9]+`, i)}
				q.path = fmt.Sprintf("/re%d/123", i)
			}
		case 6:
			m.Model = &config.StringMatch{Value: "llama"}
			q.model = "llama"
		case 7:
			r.Hostnames = []string{svc}
			m.QueryParams = []config.HeaderMatch{{Name: "v", Value: "2"}}
			q.withQuery("v", "2")
		case 8:
			r.Hostnames = []string{svc}
			m.Method = "PUT"
			m.Path = &config.PathMatch{Type: "Exact", Value: fmt.Sprintf("/api/%d/put", i)}
			q.method, q.path = "PUT", m.Path.Value
		case 9:
			m.Headers = []config.HeaderMatch{{Name: "x-tenant", Value: "t"}, {Name: "x-tier", Type: "RegularExpression", Value: "gold|silver"}}
			q.withHeader("x-tenant", "t", "x-tier", "gold")
		}
		r.Matches = []config.Match{m}
		c.Routes = append(c.Routes, r)
		reqs = append(reqs, q)
	}
	// Misses: unknown host and path, known host with an unknown path.
	reqs = append(reqs, get("nowhere.test", "/nothing/here"), get("svc-1.example.com", "/zzz"))
	config.Default(c)
	tab, err := Compile(c)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return tab, reqs
}
