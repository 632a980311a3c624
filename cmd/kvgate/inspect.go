package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/proxy"
)

// inspectFlags are the flags of `kvgate inspect`.
type inspectFlags struct {
	admin     string
	output    string
	tokenFile string
	n         int
	timeout   time.Duration
	// explain
	model, prompt, path, listener, host, body string
	headers                                   headerFlag
}

// headerFlag collects repeated --header NAME=VALUE flags.
type headerFlag map[string]string

func (h *headerFlag) String() string { return "" }
func (h *headerFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(name) == "" {
		return errors.New("write a header as NAME=VALUE, e.g. --header x-canary=true")
	}
	if *h == nil {
		*h = headerFlag{}
	}
	(*h)[strings.TrimSpace(name)] = value
	return nil
}

// outputFlag accepts table or json.
type outputFlag struct{ v *string }

func (o outputFlag) String() string {
	if o.v == nil {
		return ""
	}
	return *o.v
}
func (o outputFlag) Set(v string) error {
	if v != "table" && v != "json" {
		return fmt.Errorf("write table or json")
	}
	*o.v = v
	return nil
}

func (f *inspectFlags) flagSet() *flag.FlagSet {
	fs := newFlagSet("inspect")
	def := os.Getenv("KVGATE_ADMIN")
	if def == "" {
		def = config.DefaultAdminAddress
	}
	f.admin, f.output = def, "table"
	fs.StringVar(&f.admin, "admin", def, "the admin listener of a running kvgate, `HOST:PORT` or a URL (default $KVGATE_ADMIN, else "+config.DefaultAdminAddress+")")
	fs.Var(outputFlag{&f.output}, "output", "`FORMAT`: table (default) or json (the admin endpoint's answer as it is)")
	fs.Var(outputFlag{&f.output}, "o", "`FORMAT`: short for --output")
	fs.StringVar(&f.tokenFile, "token-file", "", "send the bearer token in `FILE` (the admin's admin.tokenFile)")
	fs.IntVar(&f.n, "n", 20, "picks: show the last `N` decisions (0: all kept)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "give up on the admin listener after `DURATION`")
	fs.StringVar(&f.model, "model", "", "explain: the request's `MODEL`")
	fs.StringVar(&f.prompt, "prompt", "", "explain: the prompt `TEXT` (sent as one user message, or as prompt for a completions --path)")
	fs.StringVar(&f.body, "body", "", "explain: read the whole request body from `FILE` instead of --model and --prompt (\"-\": stdin)")
	fs.StringVar(&f.path, "path", "/v1/chat/completions", "explain: the request `PATH`")
	fs.StringVar(&f.listener, "listener", "", "explain: the `LISTENER` it arrives on (default the first)")
	fs.StringVar(&f.host, "host", "", "explain: the `HOST` header")
	fs.Var(&f.headers, "header", "explain: a request header `NAME=VALUE` (repeatable)")
	return fs
}

var inspectWhat = []string{"pools", "endpoints", "routes", "picks", "explain"}

var cmdInspect = &command{
	name:     "inspect",
	synopsis: "pools|endpoints|routes|picks|explain [flags]",
	summary:  "show a running kvgate's pools, endpoints, routes and pick decisions, or explain a request's pick",
	about: `Read the admin listener of a running kvgate (its /debug endpoints) and print tables:

  kvgate inspect pools       each pool: endpoints ready / ejected / suspect, in flight, hit rate, picks by reason
  kvgate inspect endpoints   each endpoint: state, in flight, scraped queue and KV cache, TTFT p50/p99
  kvgate inspect routes      each route: matches, hits, backends with weights and hits
  kvgate inspect picks       the last inference pick decisions and every endpoint's score
  kvgate inspect explain --model M --prompt TEXT
                             which endpoint a request would go to now and why (a dry run:
                             nothing is sent, counted or remembered)

-o json prints the admin endpoint's JSON instead. The status page at http://ADMIN/ shows the same.`,
	args:    "WHAT (pools, endpoints, routes, picks or explain)",
	minArgs: 1,
	maxArgs: 1,
	groups: []flagGroup{
		{"Connection", []string{"admin", "token-file", "timeout"}},
		{"Output", []string{"output", "o", "n"}},
		{"Explain", []string{"model", "prompt", "body", "path", "listener", "host", "header"}},
	},
	flags: func() *flag.FlagSet { return new(inspectFlags).flagSet() },
}

func runInspect(ctx context.Context, args []string, stdout io.Writer) error {
	var f inspectFlags
	fs := f.flagSet()
	pos, ok, err := cmdInspect.parse(fs, args, stdout)
	if !ok {
		return err
	}
	what := pos[0]
	if !contains(inspectWhat, what) {
		if s := config.Suggest(what, inspectWhat); s != "" {
			return usageError("inspect: unknown %q: did you mean %q? %s", what, s, cmdInspect.seeHelp())
		}
		return usageError("inspect: unknown %q: write one of %s; %s", what, strings.Join(inspectWhat, ", "), cmdInspect.seeHelp())
	}
	// Flags that only explain reads must not be silently ignored elsewhere.
	if what != "explain" {
		for _, name := range []string{"model", "prompt", "body", "listener", "host", "header"} {
			if flagSet(fs, name) {
				return usageError("inspect %s: --%s is a flag of inspect explain; %s", what, name, cmdInspect.seeHelp())
			}
		}
	} else if f.body == "" && f.model == "" && f.prompt == "" {
		return usageError("inspect explain: give the request: --model M --prompt TEXT, or --body FILE; %s", cmdInspect.seeHelp())
	} else if f.body != "" && (f.model != "" || f.prompt != "") {
		return usageError("inspect explain: --body replaces --model and --prompt: give one or the other; %s", cmdInspect.seeHelp())
	}
	if what != "picks" && flagSet(fs, "n") {
		return usageError("inspect %s: -n is a flag of inspect picks; %s", what, cmdInspect.seeHelp())
	}
	c, err := newAdminClient(f.admin, f.tokenFile, f.timeout)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	var raw []byte
	switch what {
	case "pools", "endpoints":
		raw, err = c.get(ctx, "/debug/pools")
	case "routes":
		raw, err = c.get(ctx, "/debug/routes")
	case "picks":
		raw, err = c.get(ctx, "/debug/picks?n="+strconv.Itoa(max(f.n, 0)))
	case "explain":
		req := proxy.ExplainRequest{Model: f.model, Prompt: f.prompt, Path: f.path, Listener: f.listener, Host: f.host, Headers: f.headers}
		if f.body != "" {
			var b []byte
			if f.body == "-" {
				b, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
			} else {
				b, err = os.ReadFile(f.body)
			}
			if err != nil {
				return fmt.Errorf("inspect explain: --body: %w", err)
			}
			if !json.Valid(b) {
				return fmt.Errorf("inspect explain: --body %s is not JSON: give an OpenAI request body", f.body)
			}
			req.Body = b
		}
		body, _ := json.Marshal(req)
		raw, err = c.post(ctx, "/debug/explain", body)
	}
	if err != nil {
		return err
	}
	if f.output == "json" {
		_, err := stdout.Write(raw)
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	switch what {
	case "pools":
		var v struct{ Pools []proxy.PoolView }
		if err := decodeAdmin(raw, &v); err != nil {
			return err
		}
		printPools(tw, v.Pools)
	case "endpoints":
		var v struct{ Pools []proxy.PoolView }
		if err := decodeAdmin(raw, &v); err != nil {
			return err
		}
		printEndpoints(tw, v.Pools)
	case "routes":
		var v struct{ Routes []proxy.RouteView }
		if err := decodeAdmin(raw, &v); err != nil {
			return err
		}
		printRoutes(tw, v.Routes)
	case "picks":
		var v struct{ Picks []proxy.PickRecord }
		if err := decodeAdmin(raw, &v); err != nil {
			return err
		}
		printPicks(tw, v.Picks)
	case "explain":
		var v proxy.Explanation
		if err := decodeAdmin(raw, &v); err != nil {
			return err
		}
		printExplain(tw, &v)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// flagSet reports whether the command line set flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// adminClient talks to a kvgate admin listener.
type adminClient struct {
	base  string
	token string
	http  *http.Client
}

func newAdminClient(addr, tokenFile string, timeout time.Duration) (*adminClient, error) {
	base := strings.TrimRight(addr, "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		base = "http://" + base
	}
	c := &adminClient{base: base, http: &http.Client{Timeout: timeout}}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("inspect: --token-file: %w", err)
		}
		c.token = strings.TrimSpace(string(b))
	}
	return c, nil
}

func (c *adminClient) get(ctx context.Context, path string) ([]byte, error) {
	return c.do(ctx, "GET", path, nil)
}

func (c *adminClient) post(ctx context.Context, path string, body []byte) ([]byte, error) {
	return c.do(ctx, "POST", path, body)
}

func (c *adminClient) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("inspect: --admin %s: %w", c.base, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("inspect: cannot reach the admin listener at %s: %w (is kvgate running? pass --admin HOST:PORT, its admin.address)", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("inspect: read %s%s: %w", c.base, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Message string }
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			msg = e.Error.Message
		}
		if resp.StatusCode == http.StatusNotFound && strings.HasPrefix(path, "/debug/") && !strings.Contains(msg, "/debug/") {
			msg += " (this kvgate has no /debug endpoints: is it older than kvgate inspect?)"
		}
		return nil, fmt.Errorf("inspect: %s %s%s: %s: %s", method, c.base, path, resp.Status, msg)
	}
	return b, nil
}

func decodeAdmin(raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("inspect: the admin listener answered something that is not kvgate's JSON: %w", err)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func pctText(p *float64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatFloat(*p*100, 'f', 1, 64) + "%"
}

func msText(p *float64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatFloat(*p, 'f', 1, 64) + "ms"
}

func i64Text(p *int64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatInt(*p, 10)
}

// picksText is "affinity=3 placement=1", in a fixed order.
func picksText(m map[string]uint64) string {
	var parts []string
	for _, r := range []string{"affinity", "placement", "spillover", "fallback"} {
		if n := m[r]; n > 0 {
			parts = append(parts, r+"="+strconv.FormatUint(n, 10))
		}
	}
	var other []string
	for r, n := range m {
		if !contains([]string{"affinity", "placement", "spillover", "fallback"}, r) && n > 0 {
			other = append(other, r+"="+strconv.FormatUint(n, 10))
		}
	}
	sort.Strings(other)
	parts = append(parts, other...)
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func printPools(w io.Writer, pools []proxy.PoolView) {
	fmt.Fprintln(w, "POOL\tKIND\tPICKER\tENDPOINTS\tREADY\tEJECTED\tSUSPECT\tINFLIGHT\tQUEUED\tHIT-RATE\tPICKS")
	for _, p := range pools {
		var ready, ejected, suspect int
		var inflight int64
		for _, e := range p.Endpoints {
			switch e.State {
			case "ready":
				ready++
			case "ejected":
				ejected++
			case "suspect":
				suspect++
			}
			inflight += e.Inflight
		}
		picker := p.Picker
		if picker == "" {
			picker = p.Balancer
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", p.Name, p.Kind, picker, len(p.Endpoints), ready, ejected, suspect,
			inflight, p.Queued, pctText(p.HitRate), picksText(p.Picks))
	}
}

func printEndpoints(w io.Writer, pools []proxy.PoolView) {
	fmt.Fprintln(w, "POOL\tENDPOINT\tSTATE\tINFLIGHT\tQUEUE\tRUNNING\tKV\tSCRAPED\tHIT-RATE\tTTFT-P50\tTTFT-P99\tPICKS")
	for _, p := range pools {
		for _, e := range p.Endpoints {
			scraped := "never"
			if e.ScrapeAgeSec != nil {
				scraped = strconv.FormatFloat(*e.ScrapeAgeSec, 'f', 1, 64) + "s ago"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, e.Address, e.State, e.Inflight,
				i64Text(e.Queue), i64Text(e.Running), pctText(e.KV), scraped, pctText(e.HitRate), msText(e.TTFTP50Ms), msText(e.TTFTP99Ms), picksText(e.Picks))
		}
	}
}

func printRoutes(w io.Writer, routes []proxy.RouteView) {
	fmt.Fprintln(w, "ROUTE\tMATCHES\tHITS\tBACKENDS (POOL WEIGHT SHARE HITS)")
	for _, r := range routes {
		var bs []string
		for _, b := range r.Backends {
			bs = append(bs, fmt.Sprintf("%s %d %.0f%% %d", b.Pool, b.Weight, 100*b.Share, b.Hits))
		}
		m := strings.Join(r.Matches, "; ")
		if m == "" {
			m = "any"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", r.Name, m, r.Hits, strings.Join(bs, ", "))
	}
}

func printPicks(w io.Writer, picks []proxy.PickRecord) {
	fmt.Fprintln(w, "TIME\tREQUEST\tMODEL\tROUTE\tPOOL\tENDPOINT\tREASON\tCACHED\tSCORES")
	for _, p := range picks {
		var sc []string
		for _, c := range p.Candidates {
			if c.Filtered != "" {
				sc = append(sc, c.Endpoint+"="+c.Filtered)
				continue
			}
			s := c.Endpoint + "=" + strconv.FormatFloat(c.Score, 'f', 2, 64)
			if c.Chosen {
				s = "*" + s
			}
			sc = append(sc, s)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\n", p.Time.Format("15:04:05.000"), dash(p.RequestID), dash(p.Model), p.Route, p.Pool,
			p.Endpoint, p.Reason, p.MatchedBlocks, p.PromptBlocks, strings.Join(sc, " "))
	}
	if len(picks) == 0 {
		fmt.Fprintln(w, "(no inference picks yet)")
	}
}

func printExplain(tw *tabwriter.Writer, v *proxy.Explanation) {
	fmt.Fprintf(tw, "route %s (listener %s)\n", v.Route, v.Listener)
	for _, b := range v.Backends {
		fmt.Fprintf(tw, "\nbackend %s: weight %d (%.0f%% of the route's requests), %s pool, picker %s\n", b.Pool, b.Weight, 100*b.Share, b.Kind, dash(b.Picker))
		if b.Endpoint != "" {
			fmt.Fprintf(tw, "  -> %s: %s, %d of %d prompt blocks cached there (about %d prompt tokens)\n", b.Endpoint, b.Reason, b.MatchedBlocks, b.PromptBlocks, b.PromptTokens)
		}
		if b.Note != "" {
			fmt.Fprintf(tw, "  %s\n", b.Note)
		}
		if len(b.Candidates) == 0 {
			continue
		}
		fmt.Fprintln(tw, "  \tENDPOINT\tSCORE\tCACHED-BLOCKS\tQUEUE\tKV\tINFLIGHT\tRECENT\tNOTE")
		for _, c := range b.Candidates {
			mark := ""
			if c.Chosen {
				mark = "*"
			}
			if c.Filtered != "" {
				fmt.Fprintf(tw, "  %s\t%s\t-\t-\t-\t-\t-\t-\t%s\n", mark, c.Endpoint, c.Filtered)
				continue
			}
			fresh := ""
			if !c.Fresh && b.Kind == "inference" {
				fresh = "stale metrics: queue is kvgate's in-flight count"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%.3f\t%d\t%g\t%s\t%d\t%d\t%s\n", mark, c.Endpoint, c.Score, c.MatchedBlocks, c.Queue, pctText(c.KV), c.Inflight, c.Recent, fresh)
		}
	}
}
