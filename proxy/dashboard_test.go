package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/kvgate/kvgate/sim"
)

// dashboardFile is the Grafana dashboard shipped in deploy/.
const dashboardFile = "../deploy/grafana/kvgate.json"

// dashboardQueries returns every PromQL expression of a Grafana dashboard:
// the panels' targets and the query variables.
func dashboardQueries(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("%s: panel %q has a target without expr", path, p.Title)
			}
			out = append(out, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("%s: variable query: %v", path, err)
		}
		out = append(out, q.Query)
	}
	return out
}

var (
	promStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promBraces   = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promNumber   = regexp.MustCompile(`(^|[^A-Za-z0-9_:])(?:\d*\.\d+|\d+\.?\d*)(?:[eE][-+]?\d+)?`)
	promIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*\s*\(?`)
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true}
)

// metricNames returns the metric names a PromQL expression (or a Grafana
// label_values() query) reads: identifiers that are not functions, label
// matchers, groupings, ranges or keywords.
func metricNames(expr string) []string {
	s := promStrings.ReplaceAllString(expr, `""`)
	s = promGrouping.ReplaceAllString(s, " ")
	// label_values(metric, label): the label is not a metric.
	s = regexp.MustCompile(`label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)[^)]*\)`).ReplaceAllString(s, "$1")
	s = promBraces.ReplaceAllString(s, " ")
	s = promNumber.ReplaceAllString(s, "$1 ")
	var out []string
	for _, m := range promIdent.FindAllString(s, -1) {
		if strings.HasSuffix(m, "(") || promKeywords[strings.TrimSpace(m)] {
			continue
		}
		out = append(out, strings.TrimSpace(m))
	}
	return out
}

func TestMetricNamesOfPromQL(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (code) (rate(kvgate_requests_total{instance=~"$instance",x="a b"}[$__rate_interval]))`, []string{"kvgate_requests_total"}},
		{`histogram_quantile(0.99, sum by (le, model) (rate(a_bucket{m="x"}[5m]))) / clamp_min(b, 1e-9)`, []string{"a_bucket", "b"}},
		{`label_values(kvgate_build_info, instance)`, []string{"kvgate_build_info"}},
		{`x > 0 and on (pool) y`, []string{"x", "y"}},
	} {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%s) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

// exposedNames is every series name an exposition offers: each family's
// name, and a histogram's _bucket, _sum and _count.
func exposedNames(fams map[string]*dto.MetricFamily) map[string]bool {
	out := map[string]bool{}
	for name, mf := range fams {
		out[name] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM || mf.GetType() == dto.MetricType_SUMMARY {
			out[name+"_sum"], out[name+"_count"] = true, true
			if mf.GetType() == dto.MetricType_HISTOGRAM {
				out[name+"_bucket"] = true
			}
		}
	}
	return out
}

// TestDashboardQueriesExist runs a short load through kvgate (streamed chat
// completions with usage to two simulated model servers in an inference
// pool, a 404 and an authorization denial), then checks that every metric
// name the Grafana dashboard queries is in /metrics, and that /metrics
// passes the client library's linter.
func TestDashboardQueriesExist(t *testing.T) {
	addrs := startSims(t, 2, sim.Config{})
	p := startProxy(t, fmt.Sprintf(`routes:
  - {name: chat, matches: [{path: {value: /v1/}}], backends: [{pool: llm}]}
pools:
  - name: llm
    endpoints: [%q, %q]
    inference: {}
authorization:
  - name: no-admin
    action: DENY
    rules: [{to: [{paths: ["/v1/admin"]}]}]
`, addrs[0], addrs[1]))
	for i := range 6 {
		e := engines()[i%2]
		body := fmt.Sprintf(`{"model":"sim-model","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"conversation %d: %s"}]}`,
			i%3, textOf("hello", 300))
		resp, err := e.client().Post(e.url(p, "/v1/chat/completions"), "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"usage"`) {
			t.Fatalf("chat completion: %d\n%s", resp.StatusCode, b)
		}
	}
	for path, want := range map[string]int{"/nothing": http.StatusNotFound, "/v1/admin": http.StatusForbidden} {
		if resp, _ := mustGet(t, plainClient(), engines()[0].url(p, path)); resp.StatusCode != want {
			t.Fatalf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	var fams map[string]*dto.MetricFamily
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		fams = scrapeFamilies(t, p, "")
		if s := series(fams, "kvgate_gen_ai_client_token_usage", "model", "sim-model", "gen_ai_token_type", "output"); len(s) > 0 {
			var n uint64
			for _, m := range s {
				n += m.GetHistogram().GetSampleCount()
			}
			if n == 6 {
				break
			}
		}
	}
	exposed := exposedNames(fams)
	queries := dashboardQueries(t, dashboardFile)
	seen := map[string]bool{}
	for _, q := range queries {
		names := metricNames(q)
		if len(names) == 0 {
			t.Errorf("query reads no metric: %s", q)
		}
		for _, n := range names {
			seen[n] = true
			if !exposed[n] {
				t.Errorf("the dashboard queries %s, which /metrics does not have (query: %s)", n, q)
			}
		}
	}
	if len(seen) < 20 {
		t.Errorf("the dashboard reads %d metric names; want the whole picture (20 or more)", len(seen))
	}
	lint(t, p)
}
