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
	config.Default(&c) // config.Parse does this; Compile takes defaulted configs
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
