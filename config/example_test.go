package config_test

import (
	"errors"
	"fmt"

	"github.com/kvgate/kvgate/config"
)

func ExampleParse() {
	cfg, err := config.Parse([]byte(`
listeners: [{name: plain, address: 127.0.0.1:8080}]
routes: [{name: default, backends: [{pool: backend}]}]
pools: [{name: backend, endpoints: [127.0.0.1:8000]}]
`), "kvgate.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	// Defaults are filled in: protocols, the catch-all match, the balancer.
	fmt.Println(cfg.Listeners[0].Protocols, cfg.Routes[0].Matches[0].Path.Type, cfg.Routes[0].Matches[0].Path.Value, cfg.Pools[0].Balancer)
	// Output: [http1 http2] PathPrefix / least-request
}

func ExampleErrors() {
	_, err := config.Parse([]byte(`
listeners:
  - name: plain
    adress: 127.0.0.1:8080
routes:
  - name: default
    backends: [{pool: backnd}]
pools:
  - {name: backend, endpoints: [127.0.0.1:8000], dialTimeout: 5}
`), "kvgate.yaml")
	fmt.Println(err)

	var problems *config.Errors
	if errors.As(err, &problems) {
		fmt.Println(len(*problems), "problems; the first is at line", (*problems)[0].Line)
	}
	// Output:
	// kvgate.yaml:4:5: listeners[0].adress: unknown key "adress"; did you mean "address"?
	// kvgate.yaml:7:23: routes[0].backends[0].pool: no pool named "backnd"; did you mean "backend"?
	// kvgate.yaml:9:63: pools[0].dialTimeout: 5 has no unit: write 5s or 5ms
	// 3 problems; the first is at line 4
}

func ExampleConfig_ErrorAt() {
	cfg, err := config.Parse(config.DefaultYAML, "quickstart.yaml")
	if err != nil {
		panic(err)
	}
	// The proxy finds some problems only at run time; it reports them the same way.
	fmt.Println(cfg.ErrorAt("listeners[0].address", "cannot listen: address already in use"))
	// Output: quickstart.yaml:21:14: listeners[0].address: cannot listen: address already in use
}

func ExampleDefault() {
	cfg := &config.Config{Pools: []config.Pool{{Name: "gpu", DNS: "vllm:8000", Inference: &config.Inference{}}}}
	config.Default(cfg)
	in := cfg.Pools[0].Inference
	fmt.Println(cfg.Admin.Address, in.Picker, in.BlockSize, in.ScrapeInterval.D())
	// Output: 127.0.0.1:9901 latency 64 50ms
}
