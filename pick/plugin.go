package pick

import (
	"fmt"
	"strings"
)

// Filter narrows the candidates of one pick.
//
// Contract: Filter returns the candidates that pass, in their order, and may
// reuse cands' backing array (filter in place). An empty result ends the pick
// with no endpoint, so a filter that would empty the set for a soft reason
// (saturation, a missing adapter) returns cands unchanged instead. It is
// called concurrently from many requests (with distinct PickContexts) and
// must not block, do I/O, allocate on the steady path or keep cands.
type Filter interface {
	Filter(pc *PickContext, cands []Candidate) []Candidate
}

// Scorer rates every candidate of one pick.
//
// Contract: Score writes to out[i] a score for cands[i], in [0,1], higher is
// better; len(out) == len(cands) > 0. The same concurrency and no-I/O rules
// as Filter apply; Score must not change cands.
type Scorer interface {
	Score(pc *PickContext, cands []Candidate, out []float64)
}

// Picker chooses one candidate, reading Candidate.Score (the weighted sum of
// the scorers, in [0,1]).
//
// Contract: Pick returns an index in [0, len(cands)); len(cands) > 0. It may
// be called concurrently and must not block or do I/O.
type Picker interface {
	Pick(pc *PickContext, cands []Candidate) int
}

// CacheReader is implemented by a Picker that reads the prefix index itself:
// when ReadsCache reports true, every pick fills Candidate.Matched and
// Candidate.Cached for it even without a prefix scorer (SGLangPicker).
type CacheReader interface {
	ReadsCache() bool
}

// Kind is the stage of a pipeline a plugin runs in.
type Kind uint8

// The kinds of plugin, in pipeline order.
const (
	KindFilter Kind = iota + 1
	KindScorer
	KindPicker
)

func (k Kind) String() string {
	switch k {
	case KindFilter:
		return "filter"
	case KindScorer:
		return "scorer"
	case KindPicker:
		return "picker"
	}
	return "unknown"
}

// Plugin is one entry of the registry: a built-in filter, scorer or picker
// under its name. The name is declared here and nowhere else: presets,
// configuration validation (package config), documentation and error
// messages all read it from the registry. Names are unique across kinds.
//
// Plugins are registered from the var blocks of filters.go, scorers.go and
// pickers.go at package initialisation, and never change afterwards.
type Plugin struct {
	Name string
	Kind Kind
	// Doc says in one line what the plugin does.
	Doc string
	// make returns a new instance: a Filter, Scorer or Picker as Kind says.
	// Most plugins are stateless values; a round-robin picker carries its
	// counter, so every pipeline makes its own.
	make func() any
}

// registry holds every plugin by name; plugins lists them in registration
// order (the order of the var blocks), which is the order names are listed
// in messages and docs.
var (
	registry = map[string]*Plugin{}
	plugins  []*Plugin
)

func register(name string, kind Kind, doc string, make func() any) *Plugin {
	if _, dup := registry[name]; dup {
		panic("pick: plugin " + name + " registered twice")
	}
	p := &Plugin{Name: name, Kind: kind, Doc: doc, make: make}
	registry[name] = p
	plugins = append(plugins, p)
	return p
}

func filterPlugin(name, doc string, make func() Filter) *Plugin {
	return register(name, KindFilter, doc, func() any { return make() })
}

func scorerPlugin(name, doc string, make func() Scorer) *Plugin {
	return register(name, KindScorer, doc, func() any { return make() })
}

func pickerPlugin(name, doc string, make func() Picker) *Plugin {
	return register(name, KindPicker, doc, func() any { return make() })
}

// Plugins returns every registered plugin, filters then pickers then
// scorers, each in registration order. The caller must not modify them.
func Plugins() []*Plugin { return plugins }

// Names returns the names of the plugins of kind, in registration order.
func Names(kind Kind) []string {
	var out []string
	for _, p := range plugins {
		if p.Kind == kind {
			out = append(out, p.Name)
		}
	}
	return out
}

// NewScorer returns a new instance of the scorer called name.
func NewScorer(name string) (Scorer, error) {
	p, ok := registry[name]
	if !ok || p.Kind != KindScorer {
		return nil, fmt.Errorf("pick: unknown scorer %q; use one of %s", name, strings.Join(Names(KindScorer), ", "))
	}
	return p.make().(Scorer), nil
}

// WeightedScorer is one scorer with its weight (≥ 0).
type WeightedScorer struct {
	Scorer Scorer
	Weight float64
}

// Pipeline is filters, then weighted scorers, then one picker. It is
// immutable once built.
type Pipeline struct {
	Filters []Filter
	Scorers []WeightedScorer
	Picker  Picker
	// Plain makes the picker's choice final: no consistent placement of new
	// prefixes and no load bound, as other routers do (the gie and sglang
	// presets, kept for comparisons and migrations).
	Plain bool
}

// affinity reports whether the pipeline scores prefixes and is not plain
// (and so places new prefixes consistently and spills over on the load
// bound).
func (p Pipeline) affinity() bool {
	if p.Plain {
		return false
	}
	if _, ok := p.Picker.(MaxScorePicker); !ok {
		return false
	}
	return p.scoresPrefixes()
}

// usesIndex reports whether picks need prefix matches: a prefix scorer with
// weight, or a picker that reads Candidate.Matched.
func (p Pipeline) usesIndex() bool {
	return readsCache(p.Picker) || p.scoresPrefixes()
}

func (p Pipeline) scoresPrefixes() bool {
	for _, ws := range p.Scorers {
		if _, ok := ws.Scorer.(PrefixScorer); ok && ws.Weight > 0 {
			return true
		}
	}
	return false
}

func readsCache(p Picker) bool {
	r, ok := p.(CacheReader)
	return ok && r.ReadsCache()
}

// score sets every candidate's Score to the normalised weighted sum.
func (p Pipeline) score(pc *PickContext, cands []Candidate) {
	for i := range cands {
		cands[i].Score = 0
	}
	var total float64
	for _, ws := range p.Scorers {
		if ws.Weight <= 0 {
			continue
		}
		total += ws.Weight
		if cap(pc.scores) < len(cands) {
			pc.scores = make([]float64, len(cands))
		}
		out := pc.scores[:len(cands)]
		clear(out)
		ws.Scorer.Score(pc, cands, out)
		for i, v := range out {
			cands[i].Score += ws.Weight * min(max(v, 0), 1)
		}
	}
	if total > 0 {
		for i := range cands {
			cands[i].Score /= total
		}
	}
}
