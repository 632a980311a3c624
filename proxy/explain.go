package proxy

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/kvgate/kvgate/openai"
	"github.com/kvgate/kvgate/pick"
)

// ExplainRequest describes a request to explain: where it would be routed
// and which endpoint each of its backends would pick, without sending it.
type ExplainRequest struct {
	// Listener the request arrives on; default the first listener.
	Listener string `json:"listener,omitempty"`
	Host     string `json:"host,omitempty"`
	// Method, default POST; Path, default /v1/chat/completions.
	Method  string            `json:"method,omitempty"`
	Path    string            `json:"path,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	// Model and Prompt build an OpenAI body for Path (one user message for
	// chat completions, a prompt string for completions) unless Body is set.
	Model     string          `json:"model,omitempty"`
	Prompt    string          `json:"prompt,omitempty"`
	CacheSalt string          `json:"cacheSalt,omitempty"`
	Body      json.RawMessage `json:"body,omitempty"`
}

// Explanation is where a request would go and why.
type Explanation struct {
	Listener string           `json:"listener"`
	Route    string           `json:"route"`
	Backends []ExplainBackend `json:"backends"`
}

// ExplainBackend is one weighted backend of the matched route and the pick
// its pool would make now.
type ExplainBackend struct {
	Pool   string  `json:"pool"`
	Weight int     `json:"weight"`
	Share  float64 `json:"share"`
	Kind   string  `json:"kind"` // plain | inference
	Picker string  `json:"picker"`
	// Endpoint would get the request, for Reason; "" when none would (Note says why).
	Endpoint      string      `json:"endpoint,omitempty"`
	Reason        string      `json:"reason,omitempty"`
	Note          string      `json:"note,omitempty"`
	MatchedBlocks int         `json:"matchedBlocks"`
	PromptBlocks  int         `json:"promptBlocks"`
	PromptTokens  int         `json:"promptTokens"`
	Candidates    []Candidate `json:"candidates"`
}

// explainReq is a router.Request for an ExplainRequest.
type explainReq struct {
	r     *ExplainRequest
	path  string
	query string
	model string
}

func (e *explainReq) Host() string   { return e.r.Host }
func (e *explainReq) Method() string { return e.r.Method }
func (e *explainReq) Path() string   { return e.path }
func (e *explainReq) Model() string  { return e.model }
func (e *explainReq) Header(name string) string {
	for k, v := range e.r.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}
func (e *explainReq) Query(name string) (string, bool) {
	for _, kv := range strings.Split(e.query, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k == name {
			return v, true
		}
	}
	return "", false
}

// ErrExplain marks a request Explain cannot answer (no such listener, no
// route); its message says what to change.
var ErrExplain = errors.New("proxy: explain")

// Explain routes req as the running configuration would and runs each
// backend pool's pick as a dry run (pick.Pool.Explain): nothing is counted
// in flight, no pick is recorded and the prefix index learns nothing.
func (p *Proxy) Explain(req ExplainRequest) (*Explanation, error) {
	s := p.snap.Load()
	if req.Method == "" {
		req.Method = "POST"
	}
	if req.Path == "" {
		req.Path = "/v1/chat/completions"
	}
	if req.Listener == "" && len(s.cfg.Listeners) > 0 {
		req.Listener = s.cfg.Listeners[0].Name
	}
	known := false
	var names []string
	for _, l := range s.cfg.Listeners {
		known = known || l.Name == req.Listener
		names = append(names, l.Name)
	}
	if !known {
		return nil, errors.Join(ErrExplain, errors.New("no listener "+strconv.Quote(req.Listener)+": use one of "+strings.Join(names, ", ")))
	}
	body := []byte(req.Body)
	if len(body) == 0 {
		body = explainBody(&req)
	}
	var pr openai.Prompt
	hasPrompt := openai.Extract(stripQuery(req.Path), body, &pr) == nil
	r := &explainReq{r: &req, model: pr.Model}
	r.path, r.query, _ = strings.Cut(req.Path, "?")
	m := s.table.MatchFull(req.Listener, r)
	if m.Route == nil {
		return nil, errors.Join(ErrExplain, errors.New("no route matches "+req.Method+" "+req.Host+req.Path+" on listener "+req.Listener+": check the route's hostnames, matches and listeners"))
	}
	out := &Explanation{Listener: req.Listener, Route: m.Route.Name}
	total := 0
	for _, b := range m.Route.Backends {
		total += int(b.Weight)
	}
	for _, b := range m.Route.Backends {
		eb := ExplainBackend{Pool: b.Pool, Weight: int(b.Weight), Kind: "plain"}
		if total > 0 {
			eb.Share = round3(float64(b.Weight) / float64(total))
		}
		pl := s.pools[b.Pool]
		if pl == nil {
			eb.Note = "pool does not exist"
			out.Backends = append(out.Backends, eb)
			continue
		}
		eb.Picker = pl.cfg.Balancer
		l := pl.list.Load()
		ip := p.infer.get(pl.name)
		if ip == nil {
			eb.Note = "plain pool: the " + pl.cfg.Balancer + " balancer picks on load alone, per request"
			now := time.Now().UnixNano()
			for _, e := range l.states {
				c := Candidate{Endpoint: e.Addr, Recent: e.Recent()}
				c.Inflight, _ = e.Inflight()
				if !e.Ready(now) {
					c.Filtered = "ejected"
				}
				eb.Candidates = append(eb.Candidates, c)
			}
			out.Backends = append(out.Backends, eb)
			continue
		}
		in := ip.cfg.Load()
		eb.Kind, eb.Picker = "inference", in.Picker
		pc := pick.AcquirePickContext()
		pc.Keep = true
		pc.Now = time.Now().UnixNano()
		if hasPrompt {
			n := min(len(body), in.MaxPromptBytes)
			var cut openai.Prompt
			_ = openai.Extract(stripQuery(req.Path), body[:n], &cut)
			promptRequest(&pc.Req, &cut, in.BlockSize)
		} else {
			eb.Note = "the body is not an OpenAI request kvgate reads a prompt from: the picker falls back to load"
		}
		if in.Picker == "session" {
			pc.Req.Session = r.Header(in.SessionHeader)
		}
		pc.Req.StopIfSaturated = true
		d := ip.picks().Explain(pc, l.states)
		eb.PromptBlocks, eb.PromptTokens = len(pc.Req.Blocks), pc.Req.PromptTokens
		switch {
		case d.Endpoint != nil:
			eb.Endpoint, eb.Reason, eb.MatchedBlocks = d.Endpoint.Addr, d.Reason.String(), d.Matched
		case d.Saturated:
			eb.Note = "every endpoint is saturated: the request would wait in the queue (or be shed with 429 at a negative priority)"
		default:
			eb.Note = "no ready endpoint: the request would get 503"
		}
		eb.Candidates = candidateViews(pc.Kept, l.states, d.Endpoint, pc.Now)
		pick.ReleasePickContext(pc)
		out.Backends = append(out.Backends, eb)
	}
	return out, nil
}

func stripQuery(p string) string {
	p, _, _ = strings.Cut(p, "?")
	return p
}

// explainBody builds an OpenAI request body from req's model and prompt.
func explainBody(req *ExplainRequest) []byte {
	m := map[string]any{"model": req.Model}
	if req.CacheSalt != "" {
		m["cache_salt"] = req.CacheSalt
	}
	if strings.HasSuffix(stripQuery(req.Path), "/chat/completions") {
		m["messages"] = []map[string]string{{"role": "user", "content": req.Prompt}}
	} else {
		m["prompt"] = req.Prompt
	}
	b, _ := json.Marshal(m)
	return b
}
