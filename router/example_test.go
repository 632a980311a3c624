package router_test

import (
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/router"
)

// request is a minimal router.Request.
type request struct {
	host, method, path string
	headers            map[string]string
}

func (r request) Host() string                { return r.host }
func (r request) Method() string              { return r.method }
func (r request) Path() string                { return r.path }
func (r request) Header(name string) string   { return r.headers[name] }
func (r request) Query(string) (string, bool) { return "", false }
func (r request) Model() string               { return "" }

func Example() {
	var c config.Config
	_ = yaml.Unmarshal([]byte(`
routes:
  - name: qa-canary
    hostnames: ["api.example.com"]
    matches: [{path: {type: PathPrefix, value: /v1/}, headers: [{name: x-canary, value: "true"}]}]
    backends: [{pool: agent-v2}]
  - name: default
    matches: [{path: {type: PathPrefix, value: /}}]
    backends: [{pool: agent-v1, weight: 95}, {pool: agent-v2, weight: 5}]
`), &c)
	tab, err := router.Compile(&c)
	if err != nil {
		panic(err)
	}
	canary := request{host: "api.example.com", method: "POST", path: "/v1/chat/completions", headers: map[string]string{"x-canary": "true"}}
	plain := request{host: "api.example.com", method: "POST", path: "/v1/chat/completions"}
	r := tab.Match("public", canary)
	fmt.Println(r.Name, r.PickBackend(0, 12345).Pool)
	r = tab.Match("public", plain)
	fmt.Println(r.Name, r.PickBackend(0, 0).Pool, r.PickBackend(0, ^uint64(0)).Pool)
	fmt.Println(tab.Match("public", request{host: "x", path: "/"}).Name)
	// Output:
	// qa-canary agent-v2
	// default agent-v1 agent-v2
	// default
}

func ExampleRewriteModelField() {
	body := []byte(`{"messages":[{"role":"user","content":"say \"model\""}],"model":"llama-3-8b","stream":true}`)
	out, ok := router.RewriteModelField(body, "llama-3-70b")
	fmt.Println(ok, string(out))
	// Output:
	// true {"messages":[{"role":"user","content":"say \"model\""}],"model":"llama-3-70b","stream":true}
}

func ExampleRedirect_Location() {
	rd := &router.Redirect{Scheme: "https", StatusCode: 301}
	loc, code := rd.Location(router.RedirectRequest{Scheme: "http", Host: "api.example.com", ListenerPort: 80, Path: "/v1/models", RawQuery: "a=1"}, router.MatchResult{})
	fmt.Println(code, loc)
	// Output:
	// 301 https://api.example.com/v1/models?a=1
}

func ExampleRetryPolicy_Backoff() {
	p := &router.RetryPolicy{BaseBackoff: router.DefaultBackoff}
	for attempt := 1; attempt <= 5; attempt++ {
		fmt.Println(attempt, p.Backoff(attempt, 0), p.Backoff(attempt, ^uint64(0)))
	}
	// Output:
	// 1 12.5ms 25ms
	// 2 25ms 50ms
	// 3 50ms 100ms
	// 4 100ms 200ms
	// 5 125ms 250ms
}
