package proxy

import (
	"testing"

	"github.com/kvgate/kvgate/config"
)

// TestStatusRouteHits: finished requests count on their route and backend
// pool; a reload keeps the counts of what stays, including a request that
// loaded the counters before the reload swapped them and counted after.
func TestStatusRouteHits(t *testing.T) {
	cfg, err := config.Parse([]byte(`listeners: [{name: l, address: "127.0.0.1:0"}]
routes: [{name: r, backends: [{pool: a, weight: 9}, {pool: c, weight: 1}]}]
pools: [{name: a, endpoints: ["127.0.0.1:1"]}, {name: c, endpoints: ["127.0.0.1:2"]}]
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var st statusState
	st.syncRoutes(cfg)
	st.observe(&Exchange{route: "r", pool: "a"}, 200)
	st.observe(&Exchange{route: "r", pool: "c"}, 200)
	inflight := (*st.routes.Load())["r"] // a request finishing while the reload runs
	st.syncRoutes(cfg)
	inflight.hits.Add(1)
	inflight.backends["a"].Add(1)
	st.observe(&Exchange{route: "r", pool: "a"}, 200)
	h := (*st.routes.Load())["r"]
	if got, a, c := h.hits.Load(), h.backends["a"].Load(), h.backends["c"].Load(); got != 4 || a != 3 || c != 1 {
		t.Fatalf("route r: %d hits (a %d, c %d) after a reload, want 4 (a 3, c 1)", got, a, c)
	}
}
