package proxy

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"

	"github.com/kvgate/kvgate/config"
)

// This file holds the GenAI metrics the proxy measures on OpenAI-shaped
// replies, named after the OpenTelemetry GenAI semantic conventions mapped
// to Prometheus (dots to underscores, the unit as a suffix, a kvgate_
// prefix), with the conventions' advisory bucket boundaries:
//
//	kvgate_gen_ai_server_time_to_first_token_seconds    gen_ai.server.time_to_first_token
//	kvgate_gen_ai_server_time_per_output_token_seconds  gen_ai.server.time_per_output_token
//	kvgate_gen_ai_server_request_duration_seconds       gen_ai.server.request.duration
//	kvgate_gen_ai_client_token_usage{gen_ai_token_type} gen_ai.client.token.usage
//	kvgate_gen_ai_usage_cache_read_input_tokens_total   gen_ai.usage.cache_read.input_tokens
//
// The time to first token is the time from the request's start to the first
// body byte of the upstream's reply; the time per output token is
// (duration − TTFT) / (output tokens − 1), observed when the reply reported
// more than one output token. Input and output token counts are separate
// values of gen_ai_token_type, so summing them counts each token once; the
// cached (cache-read) input tokens are part of the input tokens and have a
// family of their own.

// Advisory bucket boundaries of the OpenTelemetry GenAI conventions.
var (
	ttftBuckets     = []float64{.001, .005, .01, .02, .04, .06, .08, .1, .25, .5, .75, 1, 2.5, 5, 7.5, 10}
	tpotBuckets     = []float64{.01, .025, .05, .075, .1, .15, .2, .3, .4, .5, .75, 1, 2.5}
	genDurBuckets   = []float64{.01, .02, .04, .08, .16, .32, .64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}
	tokenBuckets    = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}
	tokenTypeLabels = [...]string{"input", "output"}
)

type genaiKey struct{ route, pool, endpoint, model string }

type genaiSeries struct {
	ttft, tpot, duration histogram    // seconds
	tokens               [2]histogram // tokens per request, by tokenTypeLabels
	cached               atomic.Uint64
}

func newGenAISeries() *genaiSeries {
	return &genaiSeries{
		ttft: newHistogram(ttftBuckets, 1e-9), tpot: newHistogram(tpotBuckets, 1e-9), duration: newHistogram(genDurBuckets, 1e-9),
		tokens: [2]histogram{newHistogram(tokenBuckets, 1), newHistogram(tokenBuckets, 1)},
	}
}

// observeGenAI records a watched reply (x.ttft set) or one whose usage was
// read; d is the request's duration, sc its sampled span context (the
// exemplar). Called from metrics.observe.
func (m *metrics) observeGenAI(x *Exchange, d time.Duration, sc trace.SpanContext) {
	k := genaiKey{route: x.route, pool: x.pool, model: x.modelLabel}
	if x.ep != nil {
		k.endpoint = x.ep.addr
	}
	m.mu.RLock()
	s := m.genai[k]
	m.mu.RUnlock()
	if s == nil {
		m.mu.Lock()
		if s = m.genai[k]; s == nil {
			s = newGenAISeries()
			m.genai[k] = s
		}
		m.mu.Unlock()
	}
	if x.status >= 200 && x.status <= 299 {
		s.duration.observe(uint64(d), sc)
	}
	if x.ttft > 0 {
		s.ttft.observe(uint64(x.ttft), sc)
		if out := x.tokens.Completion; x.hasTokens && out > 1 && d > x.ttft {
			s.tpot.observe(uint64(d-x.ttft)/uint64(out-1), sc)
		}
	}
	if x.hasTokens {
		s.tokens[0].observe(uint64(max(x.tokens.Prompt, 0)), sc)
		s.tokens[1].observe(uint64(max(x.tokens.Completion, 0)), sc)
		s.cached.Add(uint64(max(x.tokens.Cached, 0)))
	}
}

// Bounds on the model label's values. A request's model comes from its
// body, so the values a client can create are capped: the models the
// configuration names (route model matches, modelRewrite targets) always
// keep their own label, and the first maxLearnedModels other names seen
// since start get one too; every later name is counted as otherModel.
const (
	maxLearnedModels   = 32
	maxModelLabelBytes = 128
	otherModel         = "other"
)

// modelLabels maps a request's model name to its label value. The request
// path reads an immutable map through an atomic pointer; a new name copies
// the map under mu (at most maxLearnedModels times in a process's life).
type modelLabels struct {
	known   atomic.Pointer[map[string]string]
	mu      sync.Mutex
	learned int
}

// label returns the label value for model: model itself (a copy the
// metrics own, valid UTF-8) while the cap allows, otherModel past it, ""
// for no model.
func (ml *modelLabels) label(model string) string {
	if model == "" {
		return ""
	}
	if mp := ml.known.Load(); mp != nil {
		if l, ok := (*mp)[model]; ok {
			return l
		}
	}
	ml.mu.Lock()
	defer ml.mu.Unlock()
	old := ml.known.Load()
	if old != nil {
		if l, ok := (*old)[model]; ok {
			return l
		}
	}
	if ml.learned >= maxLearnedModels || len(model) > maxModelLabelBytes {
		return otherModel
	}
	ml.learned++
	ml.store(old, model)
	return (*ml.known.Load())[model]
}

// store publishes old plus names; mu is held.
func (ml *modelLabels) store(old *map[string]string, names ...string) {
	next := make(map[string]string, len(names)+1)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	for _, n := range names {
		if _, ok := next[n]; !ok {
			k := strings.Clone(n)
			next[k] = strings.ToValidUTF8(k, string(utf8.RuneError))
		}
	}
	ml.known.Store(&next)
}

// configure adds the model names cfg mentions; names learned before stay.
// Proxy.Reload calls it with each new configuration.
func (ml *modelLabels) configure(cfg *config.Config) {
	var names []string
	for _, r := range cfg.Routes {
		for _, mt := range r.Matches {
			if mt.Model != nil && (mt.Model.Type == "" || mt.Model.Type == "Exact") && mt.Model.Value != "" {
				names = append(names, mt.Model.Value)
			}
		}
		for _, b := range r.Backends {
			for _, t := range b.ModelRewrite {
				if t.Model != "" {
					names = append(names, t.Model)
				}
			}
		}
	}
	ml.mu.Lock()
	defer ml.mu.Unlock()
	ml.store(ml.known.Load(), names...)
}
