package admin_test

import (
	"log/slog"

	"github.com/kvgate/kvgate/admin"
	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/proxy"
)

// Mount the status page and the /debug endpoints on a proxy's admin
// listener before starting it, as kvgate run does.
func ExampleHandler() {
	cfg, err := config.Parse([]byte(`
admin: {address: "127.0.0.1:0"}
listeners: [{name: plain, address: "127.0.0.1:0"}]
routes: [{name: r, backends: [{pool: p}]}]
pools: [{name: p, endpoints: ["127.0.0.1:8000"]}]
`), "example.yaml")
	if err != nil {
		panic(err)
	}
	p, err := proxy.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		panic(err)
	}
	p.SetAdminUI(admin.Handler(p, "dev"))
	// p.Start() then serves GET / (the page), /debug/pools, /debug/routes,
	// /debug/picks, /debug/config and POST /debug/explain on the admin address.
}
