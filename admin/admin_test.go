package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/kvgate/kvgate/admin/admintest"
	"github.com/kvgate/kvgate/proxy"
)

func startStack(t *testing.T) *admintest.Stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := admintest.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// ejectDead sends requests to the plain pool until its dead endpoint is
// ejected (three refused connections in a row), a bounded number of times.
func ejectDead(t *testing.T, s *admintest.Stack) {
	t.Helper()
	for range 20 {
		if endpointState(s.Proxy.Status(), s.Dead) == "ejected" {
			return
		}
		if err := s.Tool(); err != nil && !isStatus(err) {
			t.Fatal(err)
		}
	}
	t.Fatalf("%s was not ejected after 20 requests", s.Dead)
}

func isStatus(err error) bool {
	_, ok := err.(*admintest.StatusError)
	return ok
}

func endpointState(v proxy.StatusView, addr string) string {
	for _, p := range v.Pools {
		for _, e := range p.Endpoints {
			if e.Address == addr {
				return e.State
			}
		}
	}
	return ""
}

// TestStatusPageInChromium loads the page in headless Chromium after
// traffic through two inference pools and a plain one, an ejection, a
// denial and two reloads (one refused), and checks the DOM: every endpoint
// with its state, the dead endpoint as ejected, both reloads with their
// results, the denial by policy, the picks, and that the live refresh ran.
func TestStatusPageInChromium(t *testing.T) {
	browser := admintest.Chromium()
	if browser == "" {
		if os.Getenv("KVGATE_REQUIRE_CHROMIUM") != "" {
			t.Fatal("KVGATE_REQUIRE_CHROMIUM is set but no chromium is installed (apt-get install chromium, or set CHROMIUM)")
		}
		t.Skip("chromium is not installed (apt-get install chromium, or set CHROMIUM): the status page's browser test needs it")
	}
	s := startStack(t)
	if err := s.Traffic(4, 3, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(25, false); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if err := s.Reload(30, true); err == nil {
		t.Fatal("a config with an unknown key was accepted")
	}
	// The ejection lasts pick.EjectFor (5 s): on a slow machine Chromium may
	// start after it ended, so eject again and retry, a bounded number of times.
	var dom string
	var doc *html.Node
	for attempt := 0; ; attempt++ {
		ejectDead(t, s)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		var err error
		dom, err = admintest.DumpDOM(ctx, browser, s.Admin+"/", 3000)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if doc, err = html.Parse(strings.NewReader(dom)); err != nil {
			t.Fatal(err)
		}
		if rowState(doc, s.Dead) == "ejected" || attempt == 2 {
			break
		}
		t.Logf("attempt %d: %s no longer ejected when the page loaded; again", attempt, s.Dead)
	}
	st := s.Proxy.Status()
	n := 0
	for _, p := range st.Pools {
		for _, e := range p.Endpoints {
			n++
			got := rowState(doc, e.Address)
			if got == "" {
				t.Errorf("the page shows no row for endpoint %s of pool %s", e.Address, p.Name)
			} else if e.Address != s.Dead && got != "ready" {
				t.Errorf("endpoint %s shows as %q, want ready", e.Address, got)
			}
		}
	}
	if n != 6 {
		t.Errorf("the stack has %d endpoints, want 6", n)
	}
	if got := rowState(doc, s.Dead); got != "ejected" {
		t.Errorf("dead endpoint %s shows as %q, want ejected", s.Dead, got)
	}
	if rowText(doc, s.Dead, "ejected") == "" {
		t.Errorf("the dead endpoint's row does not say ejected in words")
	}
	var results []string
	walk(doc, func(n *html.Node) {
		if hasClass(n, "reload") {
			results = append(results, attr(n, "data-result"))
		}
	})
	if strings.Join(results, ",") != "error,ok,ok" {
		t.Errorf("reload list = %v, want [error ok ok] (newest first: the refused reload, the reload, the start)", results)
	}
	if !strings.Contains(textOf(doc), "bogusKey") {
		t.Errorf("the refused reload's error (unknown key bogusKey) is not shown")
	}
	found := false
	walk(doc, func(n *html.Node) { found = found || hasClass(n, "denial") && attr(n, "data-policy") == "block-tenant" })
	if !found {
		t.Errorf("the denial by policy block-tenant is not listed")
	}
	picks := 0
	walk(doc, func(n *html.Node) {
		if hasClass(n, "pick") {
			picks++
		}
	})
	if picks == 0 {
		t.Errorf("no pick decisions on the page")
	}
	// The script replaced its "without JavaScript" note and refreshed <main>
	// at least once without error within the virtual time budget.
	live := textOf(byID(doc, "live-text"))
	if !strings.HasPrefix(live, "live") {
		t.Errorf("live refresh status = %q, want it to start with live (did the script run and the refresh succeed?)", live)
	}
}

// TestPageWithoutJavaScript: the page served to a client that runs no
// script is complete HTML that refreshes itself.
func TestPageWithoutJavaScript(t *testing.T) {
	s := startStack(t)
	if err := s.Traffic(2, 2, 2); err != nil {
		t.Fatal(err)
	}
	body, resp := get(t, s.Admin+"/")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q", ct)
	}
	for _, want := range []string{`<meta http-equiv="refresh" content="10">`, `href="/static/app.css"`, `data-pool="chat"`, `data-pool="tools"`, `class="pick"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(body, "http://") && strings.Contains(body, "<script src=\"http") {
		t.Errorf("page loads a script from the network")
	}
	partial, _ := get(t, s.Admin+"/?partial=1")
	if !strings.HasPrefix(partial, `<main id="main"`) || strings.Contains(partial, "<html") {
		t.Errorf("?partial=1 should be the <main> element alone: %.80q", partial)
	}
	for _, p := range []string{"/static/app.css", "/static/app.js"} {
		if b, r := get(t, s.Admin+p); r.StatusCode != 200 || len(b) < 100 {
			t.Errorf("GET %s: %d, %d bytes", p, r.StatusCode, len(b))
		}
	}
}

// TestDebugJSON checks every JSON endpoint end to end.
func TestDebugJSON(t *testing.T) {
	s := startStack(t)
	if err := s.Traffic(3, 2, 4); err != nil {
		t.Fatal(err)
	}
	var pools struct{ Pools []proxy.PoolView }
	getJSON(t, s.Admin+"/debug/pools", &pools)
	if len(pools.Pools) != 3 || pools.Pools[0].Name != "chat" || len(pools.Pools[0].Endpoints) != 3 {
		t.Fatalf("pools = %+v", pools.Pools)
	}
	chat := pools.Pools[0]
	if chat.Kind != "inference" || chat.Picker != "prefix-affinity" || chat.Picks["affinity"]+chat.Picks["placement"]+chat.Picks["spillover"] == 0 {
		t.Errorf("chat pool = %+v", chat)
	}
	if chat.HitRate == nil || *chat.HitRate <= 0 {
		t.Errorf("chat pool hit rate %v after repeated turns; want > 0", chat.HitRate)
	}
	var routes struct{ Routes []proxy.RouteView }
	getJSON(t, s.Admin+"/debug/routes", &routes)
	if len(routes.Routes) != 2 || routes.Routes[1].Name != "chat" || len(routes.Routes[1].Backends) != 2 {
		t.Fatalf("routes = %+v", routes.Routes)
	}
	r := routes.Routes[1]
	if r.Backends[0].Weight != 90 || r.Backends[1].Share != 0.1 || r.Hits == 0 || r.Backends[0].Hits+r.Backends[1].Hits != r.Hits {
		t.Errorf("chat route = %+v", r)
	}
	if routes.Routes[0].Hits != 4 {
		t.Errorf("tools route hits = %d, want 4", routes.Routes[0].Hits)
	}
	var picks struct{ Picks []proxy.PickRecord }
	getJSON(t, s.Admin+"/debug/picks?n=3", &picks)
	if len(picks.Picks) != 3 {
		t.Fatalf("picks = %d, want 3", len(picks.Picks))
	}
	p := picks.Picks[0]
	if p.Seq <= picks.Picks[1].Seq || p.Model != "sim-model" || p.RequestID == "" || p.Endpoint == "" || p.Reason == "" || len(p.Candidates) == 0 || !p.Candidates[0].Chosen {
		t.Errorf("newest pick = %+v", p)
	}
	if _, resp := get(t, s.Admin+"/debug/picks?n=x"); resp.StatusCode != 400 {
		t.Errorf("?n=x: %d, want 400", resp.StatusCode)
	}
	var cfg map[string]any
	getJSON(t, s.Admin+"/debug/config", &cfg)
	if _, ok := cfg["pools"]; !ok {
		t.Errorf("/debug/config has no pools: %v", cfg)
	}
	var st proxy.StatusView
	getJSON(t, s.Admin+"/debug/status", &st)
	if st.Requests == 0 || len(st.Reloads) != 1 || len(st.Denials) != 1 || st.Denials[0].Policy != "block-tenant" {
		t.Errorf("status: requests %d reloads %v denials %v", st.Requests, st.Reloads, st.Denials)
	}
	body, resp := get(t, s.Admin+"/debug/nope")
	if resp.StatusCode != 404 || !json.Valid([]byte(body)) {
		t.Errorf("unknown path: %d %s", resp.StatusCode, body)
	}
}

// TestExplainIsADryRun: POST /debug/explain names the endpoint the next
// request of a conversation goes to, and changes nothing.
func TestExplainIsADryRun(t *testing.T) {
	s := startStack(t)
	if err := s.Traffic(3, 2, 0); err != nil {
		t.Fatal(err)
	}
	before := s.Proxy.Status()
	picksBefore := len(s.Proxy.Picks(0))
	ex := explain(t, s, `{"headers": {"x-pool": "tools"}, "model": "m", "prompt": "hi"}`, 200)
	if ex.Route != "tools" || len(ex.Backends) != 1 || ex.Backends[0].Kind != "plain" || len(ex.Backends[0].Candidates) != 2 {
		t.Errorf("tools explain = %+v", ex)
	}
	ex = explain(t, s, `{"model": "sim-model", "prompt": "`+strings.Repeat("a long question about kvgate ", 20)+`"}`, 200)
	if ex.Route != "chat" || len(ex.Backends) != 2 {
		t.Fatalf("chat explain = %+v", ex)
	}
	for _, b := range ex.Backends {
		if b.Kind != "inference" || b.Endpoint == "" || b.Reason == "" || b.PromptBlocks == 0 || len(b.Candidates) == 0 || !b.Candidates[0].Chosen {
			t.Errorf("backend %+v", b)
		}
	}
	after := s.Proxy.Status()
	for i := range before.Pools {
		for j, e := range before.Pools[i].Endpoints {
			a := after.Pools[i].Endpoints[j]
			if a.Inflight != 0 || a.Recent != e.Recent || picksTotal(a.Picks) != picksTotal(e.Picks) {
				t.Errorf("explain changed %s: in flight %d, recent %d→%d, picks %v→%v", e.Address, a.Inflight, e.Recent, a.Recent, e.Picks, a.Picks)
			}
		}
	}
	if n := len(s.Proxy.Picks(0)); n != picksBefore {
		t.Errorf("explain was recorded in the pick log: %d → %d", picksBefore, n)
	}
	explainErr(t, s, `{"modle": "x"}`, 400)
	explainErr(t, s, `not json`, 400)
	explainErr(t, s, `{"listener": "nope"}`, 422)
}

func picksTotal(m map[string]uint64) (n uint64) {
	for _, v := range m {
		n += v
	}
	return n
}

func explain(t *testing.T, s *admintest.Stack, body string, want int) proxy.Explanation {
	t.Helper()
	resp, err := http.Post(s.Admin+"/debug/explain", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("explain %s: %d %s", body, resp.StatusCode, b)
	}
	var ex proxy.Explanation
	if err := json.Unmarshal(b, &ex); err != nil {
		t.Fatal(err)
	}
	return ex
}

func explainErr(t *testing.T, s *admintest.Stack, body string, want int) {
	t.Helper()
	resp, err := http.Post(s.Admin+"/debug/explain", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct{ Error struct{ Message string } }
	if resp.StatusCode != want || json.Unmarshal(b, &e) != nil || e.Error.Message == "" {
		t.Errorf("explain %s: %d %s; want %d with a JSON error", body, resp.StatusCode, b, want)
	}
}

func get(t *testing.T, url string) (string, *http.Response) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	body, resp := get(t, url)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %s %s", url, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, body)
	}
}

func walk(n *html.Node, f func(*html.Node)) {
	if n == nil {
		return
	}
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, c string) bool {
	return n.Type == html.ElementNode && strings.Contains(" "+attr(n, "class")+" ", " "+c+" ")
}

func byID(doc *html.Node, id string) *html.Node {
	var out *html.Node
	walk(doc, func(n *html.Node) {
		if out == nil && n.Type == html.ElementNode && attr(n, "id") == id {
			out = n
		}
	})
	return out
}

func textOf(n *html.Node) string {
	var b strings.Builder
	walk(n, func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
	})
	return b.String()
}

// rowState is the data-state of the endpoint row for addr, "" none.
func rowState(doc *html.Node, addr string) string {
	st := ""
	walk(doc, func(n *html.Node) {
		if hasClass(n, "endpoint") && attr(n, "data-endpoint") == addr {
			st = attr(n, "data-state")
		}
	})
	return st
}

// rowText returns the text of addr's row when it contains word.
func rowText(doc *html.Node, addr, word string) string {
	out := ""
	walk(doc, func(n *html.Node) {
		if hasClass(n, "endpoint") && attr(n, "data-endpoint") == addr {
			if t := textOf(n); strings.Contains(t, word) {
				out = t
			}
		}
	})
	return out
}
