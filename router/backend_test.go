package router

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kvgate/kvgate/config"
)

func weighted(t testing.TB, weights ...int) *Route {
	t.Helper()
	var bs []config.Backend
	for i, w := range weights {
		bs = append(bs, config.Backend{Pool: string(rune('a' + i)), Weight: &w})
	}
	tab, err := Compile(&config.Config{Routes: []config.Route{{Name: "w", Backends: bs}}})
	if err != nil {
		t.Fatal(err)
	}
	return tab.Route("w")
}

func TestWeights70_30_0(t *testing.T) {
	rt := weighted(t, 70, 30, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	counts := map[string]int{}
	const n = 1000
	for range n {
		counts[rt.PickBackend(0, rng.Uint64()).Pool]++
	}
	if counts["c"] != 0 {
		t.Errorf("zero-weight backend got %d picks", counts["c"])
	}
	for pool, want := range map[string]float64{"a": 0.70, "b": 0.30} {
		got := float64(counts[pool]) / n
		if math.Abs(got-want) > 0.05 {
			t.Errorf("backend %s got %.3f of picks, want %.2f ± 0.05", pool, got, want)
		}
	}
}

func TestPickBackendEdges(t *testing.T) {
	if b := weighted(t, 0, 0).PickBackend(0, 123); b != nil {
		t.Errorf("all-zero weights picked %q", b.Pool)
	}
	if b := weighted(t, 0, 0).PickBackend(99, 123); b != nil {
		t.Errorf("all-zero weights picked %q with a key", b.Pool)
	}
	if b := weighted(t).PickBackend(0, 1); b != nil {
		t.Errorf("no backends picked %q", b.Pool)
	}
	rt := weighted(t, 1, 0)
	for _, rnd := range []uint64{0, 1, math.MaxUint64} {
		if b := rt.PickBackend(0, rnd); b == nil || b.Pool != "a" {
			t.Errorf("rnd %d: picked %v, want a", rnd, b)
		}
	}
	// An unset weight is 1.
	tab := compileYAML(t, `routes: [{name: r, backends: [{pool: x}, {pool: y}]}]`)
	if got := tab.Route("r").Backends[1].Weight; got != 1 {
		t.Errorf("unset weight compiled to %d, want 1", got)
	}
}

// TestHeaderCanaryWins: a header rule sends every flagged request to v2,
// while the default 95/5 split keeps its shares.
func TestHeaderCanaryWins(t *testing.T) {
	tab := compileYAML(t, `
routes:
  - name: default
    matches: [{path: {type: PathPrefix, value: /}}]
    backends:
      - {pool: agent-v1, weight: 95}
      - {pool: agent-v2, weight: 5}
  - name: qa-canary
    hostnames: ["api.example.com"]
    matches:
      - path: {type: PathPrefix, value: /v1/}
        headers: [{name: x-canary, value: "true"}]
    backends: [{pool: agent-v2}]
`)
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 1000
	v2 := 0
	for range n {
		flagged := get("api.example.com", "/v1/chat/completions").withHeader("x-canary", "true")
		if b := tab.Match("", flagged).PickBackend(0, rng.Uint64()); b.Pool != "agent-v2" {
			t.Fatalf("canary request went to %s", b.Pool)
		}
		plain := get("api.example.com", "/v1/chat/completions")
		if b := tab.Match("", plain).PickBackend(0, rng.Uint64()); b.Pool == "agent-v2" {
			v2++
		}
	}
	if got := float64(v2) / n; math.Abs(got-0.05) > 0.03 {
		t.Errorf("default split sent %.3f to v2, want 0.05 ± 0.03", got)
	}
}

func TestStickyKeysStay(t *testing.T) {
	rt := weighted(t, 50, 30, 20)
	rng := rand.New(rand.NewPCG(5, 6))
	counts := map[string]int{}
	const keys = 20000
	for k := uint64(1); k <= keys; k++ {
		first := rt.PickBackend(k, rng.Uint64())
		for range 3 {
			if again := rt.PickBackend(k, rng.Uint64()); again != first {
				t.Fatalf("key %d moved from %s to %s with unchanged weights", k, first.Pool, again.Pool)
			}
		}
		counts[first.Pool]++
	}
	for pool, want := range map[string]float64{"a": 0.5, "b": 0.3, "c": 0.2} {
		if got := float64(counts[pool]) / keys; math.Abs(got-want) > 0.02 {
			t.Errorf("sticky keys: backend %s got %.3f, want %.2f ± 0.02", pool, got, want)
		}
	}
}

// TestStickyWeightChangeMovesOnlyWhatItMust measures how many keys move when
// one weight changes: only keys to (or from) the changed backend may move, and
// about as many as the share change requires.
func TestStickyWeightChangeMovesOnlyWhatItMust(t *testing.T) {
	for _, tc := range []struct {
		name        string
		before      []int
		after       []int
		changed     string
		minimalMove float64 // share of keys that must move at least
	}{
		{"raise b 30->40", []int{50, 30, 20}, []int{50, 40, 20}, "b", 40.0/110 - 30.0/100},
		{"lower b 30->10", []int{50, 30, 20}, []int{50, 10, 20}, "b", 30.0/100 - 10.0/80},
		{"drain c 20->0", []int{50, 30, 20}, []int{50, 30, 0}, "c", 0.20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, after := weighted(t, tc.before...), weighted(t, tc.after...)
			const keys = 50000
			moved := 0
			for k := uint64(1); k <= keys; k++ {
				x, y := before.PickBackend(k, 0), after.PickBackend(k, 0)
				if x.Pool == y.Pool {
					continue
				}
				moved++
				if x.Pool != tc.changed && y.Pool != tc.changed {
					t.Fatalf("key %d moved %s -> %s, neither is the changed backend %s", k, x.Pool, y.Pool, tc.changed)
				}
			}
			got := float64(moved) / keys
			t.Logf("moved %.4f of keys; the minimum possible is %.4f", got, tc.minimalMove)
			if math.Abs(got-tc.minimalMove) > 0.01 {
				t.Errorf("moved %.4f of keys, want the minimum %.4f ± 0.01", got, tc.minimalMove)
			}
		})
	}
}

func TestStickyKey(t *testing.T) {
	tab := compileYAML(t, `
routes:
  - {name: h, matches: [{path: {value: /h}}], sessionAffinity: {header: X-Session}, backends: [{pool: a}]}
  - {name: c, matches: [{path: {value: /c}}], sessionAffinity: {cookie: sid}, backends: [{pool: a}]}
  - {name: none, backends: [{pool: a}]}
`)
	h, c, none := tab.Route("h"), tab.Route("c"), tab.Route("none")
	for _, tc := range []struct {
		name string
		rt   *Route
		r    *req
		same string // the key must equal KeyOf(same); "" means 0
	}{
		{"header", h, get("x", "/h").withHeader("x-session", "abc"), "abc"},
		{"header absent", h, get("x", "/h"), ""},
		{"cookie", c, get("x", "/c").withHeader("cookie", "a=1; sid=abc; b=2"), "abc"},
		{"cookie quoted", c, get("x", "/c").withHeader("cookie", `sid="abc"`), "abc"},
		{"cookie prefix name only", c, get("x", "/c").withHeader("cookie", "sidx=abc"), ""},
		{"cookie absent", c, get("x", "/c"), ""},
		{"no affinity", none, get("x", "/").withHeader("x-session", "abc"), ""},
	} {
		if got, want := tc.rt.StickyKey(tc.r), KeyOf(tc.same); got != want {
			t.Errorf("%s: key %d, want %d", tc.name, got, want)
		}
	}
	if KeyOf("abc") == 0 || KeyOf("abc") == KeyOf("abd") {
		t.Error("KeyOf gives 0 or collides on neighbours")
	}
}

func TestRewriteModelWeights(t *testing.T) {
	tab := compileYAML(t, `
routes:
  - name: r
    backends:
      - pool: a
        modelRewrite: [{model: big, weight: 80}, {model: small, weight: 20}, {model: never, weight: 0}]
      - pool: b
        modelRewrite: [{model: one}, {model: two}]
      - pool: c
`)
	rt := tab.Route("r")
	rng := rand.New(rand.NewPCG(7, 8))
	counts := map[string]int{}
	const n = 2000
	for range n {
		m, ok := rt.Backends[0].RewriteModel(rng.Uint64())
		if !ok {
			t.Fatal("RewriteModel not ok on a backend with targets")
		}
		counts[m]++
	}
	if counts["never"] != 0 || math.Abs(float64(counts["big"])/n-0.8) > 0.05 {
		t.Errorf("model counts %v, want big≈80%%, small≈20%%, never 0", counts)
	}
	if m, ok := rt.Backends[1].RewriteModel(math.MaxUint64); !ok || m != "two" {
		t.Errorf("unset weights: got %q %v, want the last target for the largest rnd", m, ok)
	}
	if m, ok := rt.Backends[2].RewriteModel(1); ok {
		t.Errorf("backend without rewrite returned %q", m)
	}
}

func BenchmarkPickBackend(b *testing.B) {
	rt := weighted(b, 70, 20, 10, 0)
	b.Run("random", func(b *testing.B) {
		b.ReportAllocs()
		var rnd uint64
		for b.Loop() {
			rnd += 0x9e3779b97f4a7c15
			rt.PickBackend(0, rnd)
		}
	})
	b.Run("sticky", func(b *testing.B) {
		b.ReportAllocs()
		var key uint64
		for b.Loop() {
			key++
			rt.PickBackend(key, 0)
		}
	})
}

func TestCookieValue(t *testing.T) {
	for _, tc := range []struct{ header, name, want string }{
		{"sid=abc", "sid", "abc"},
		{"a=1; sid=abc; b=2", "sid", "abc"},
		{"a=1;sid=abc", "sid", "abc"},
		{` sid = "q" `, "sid", "q"},
		{"sidx=1; xsid=2", "sid", ""},
		{"sid", "sid", ""},
		{"sid=", "sid", ""},
		{"", "sid", ""},
		{"a=b=c; sid=d=e", "sid", "d=e"},
	} {
		if got := CookieValue(tc.header, tc.name); got != tc.want {
			t.Errorf("CookieValue(%q, %q) = %q, want %q", tc.header, tc.name, got, tc.want)
		}
	}
}

// FuzzCookieValue: a cookie written into any header between other cookies is
// found again, and no value found contains a separator.
func FuzzCookieValue(f *testing.F) {
	f.Add("a=1; b=2", "sid", "abc")
	f.Add("", "s", `"q"`)
	f.Fuzz(func(t *testing.T, other, name, value string) {
		if got := CookieValue(other, name); strings.Contains(got, ";") {
			t.Fatalf("value %q holds a separator", got)
		}
		clean := func(s string) bool { return !strings.ContainsAny(s, "; \t=\"") && s != "" }
		if !clean(name) || !clean(value) || strings.Contains(other, name) {
			return
		}
		h := other + "; " + name + "=" + value + "; z=1"
		if got := CookieValue(h, name); got != value {
			t.Fatalf("CookieValue(%q, %q) = %q, want %q", h, name, got, value)
		}
	})
}

// Compile substitutes no default of its own: a configuration that skipped
// config.Default is refused where a default is missing, never completed.
func TestCompileWithoutDefaults(t *testing.T) {
	one := 1
	for _, tc := range []struct {
		name string
		c    config.Route
		want string
	}{
		{"backend weight", config.Route{Name: "r", Backends: []config.Backend{{Pool: "a"}}}, "weight is unset"},
		{"redirect status", config.Route{Name: "r", Filters: []config.Filter{{RequestRedirect: &config.RequestRedirect{Hostname: "b"}}}}, "statusCode 0"},
		{"mirror percent", config.Route{Name: "r", Filters: []config.Filter{{RequestMirror: &config.RequestMirror{Pool: "m"}}},
			Backends: []config.Backend{{Pool: "a", Weight: &one}}}, "percent is 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(&config.Config{Routes: []config.Route{tc.c}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
