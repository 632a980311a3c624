package pick

import (
	"fmt"
	"strings"
)

// Preset is a named pipeline made of registered plugins: inference.picker
// names one, and a pool's balancer names one of those marked Balancer.
// Presets are fixed at package initialisation; callers must not modify them.
// Which preset and balancer a pool gets when its configuration names none is
// package config's to say (config.DefaultPicker, config.DefaultBalancer).
type Preset struct {
	Name string
	// Doc says in one line what the preset does.
	Doc string
	// Balancer marks the presets pools[].balancer may name: they read no
	// prompt, and with nothing scraped their filters pass every endpoint
	// that is not ejected, so a plain pool balances with them.
	Balancer bool
	Filters  []*Plugin
	Scorers  []PluginWeight
	Picker   *Plugin
	// Plain: the picker's choice is final (see Pipeline.Plain).
	Plain bool
}

// PluginWeight is a scorer plugin of a preset with its weight.
type PluginWeight struct {
	Plugin *Plugin
	Weight float64
}

// presets in the order messages and docs list them.
var presets = []*Preset{
	{
		Name:    "prefix-affinity",
		Doc:     "KV-cache affinity: the endpoint holding the longest prefix within the load bound; new prefixes placed by consistent hashing",
		Filters: []*Plugin{filterHealthy, filterNotSaturated, filterLoRA},
		Scorers: []PluginWeight{
			{scorerPrefix, 3}, {scorerQueue, 2}, {scorerKV, 2},
			{scorerInflight, 0.5}, {scorerTokens, 0.5}, {scorerLoRA, 1},
		},
		Picker: pickerMaxScore,
	},
	{
		Name:    "latency",
		Doc:     "the holder of the longest prefix (or a new prefix's placement) unless another endpoint's predicted time to first token (learned prefill rate and queue cost) is several times smaller",
		Filters: []*Plugin{filterHealthy, filterNotSaturated, filterLoRA},
		Scorers: []PluginWeight{
			{scorerPrefix, 3}, {scorerQueue, 2}, {scorerKV, 2},
			{scorerInflight, 0.5}, {scorerTokens, 0.5}, {scorerLoRA, 1},
		},
		Picker: pickerLeastTTFT,
	},
	{
		Name: "least-request", Balancer: true,
		Doc:     "least request: the one of two random endpoints with fewer requests in flight",
		Filters: []*Plugin{filterHealthy, filterNotSaturated},
		Scorers: []PluginWeight{{scorerInflight, 1}},
		Picker:  pickerP2C,
	},
	{
		Name: "round-robin", Balancer: true,
		Doc:     "each endpoint in turn",
		Filters: []*Plugin{filterHealthy, filterNotSaturated},
		Picker:  pickerRoundRobin,
	},
	{
		Name:    "random",
		Doc:     "uniformly at random",
		Filters: []*Plugin{filterHealthy, filterNotSaturated},
		Picker:  pickerRandom,
	},
	{
		Name:    "session",
		Doc:     "the same endpoint for the same inference.sessionHeader value; least loaded without one",
		Filters: []*Plugin{filterHealthy, filterNotSaturated},
		Scorers: []PluginWeight{{scorerInflight, 1}},
		Picker:  pickerSession,
	},
	{
		Name:    "gie",
		Doc:     "the Gateway API Inference Extension's default profile, without placement or load bound",
		Filters: []*Plugin{filterHealthy, filterScrapedNotSaturated},
		Scorers: []PluginWeight{{scorerPrefix, 3}, {scorerQueueMinMax, 2}, {scorerKV, 2}},
		Picker:  pickerMaxScore,
		Plain:   true,
	},
	{
		Name:    "sglang",
		Doc:     "SGLang's cache_aware router rule, without placement or load bound",
		Filters: []*Plugin{filterHealthy},
		Picker:  pickerSGLang,
		Plain:   true,
	},
}

// Presets returns every preset, in the order messages and docs list them.
// The caller must not modify them.
func Presets() []*Preset { return presets }

// PresetNames returns the names inference.picker may take.
func PresetNames() []string {
	out := make([]string, len(presets))
	for i, p := range presets {
		out[i] = p.Name
	}
	return out
}

// BalancerNames returns the names pools[].balancer may take.
func BalancerNames() []string {
	var out []string
	for _, p := range presets {
		if p.Balancer {
			out = append(out, p.Name)
		}
	}
	return out
}

// LookupPreset returns the preset called name.
func LookupPreset(name string) (*Preset, bool) {
	for _, p := range presets {
		if p.Name == name {
			return p, true
		}
	}
	return nil, false
}

// ScorerWeight names a registered scorer and its weight (≥ 0).
type ScorerWeight struct {
	Name   string
	Weight float64
}

// buildPipeline returns a new pipeline of the preset called name, with
// scorers, when any is given, replacing the preset's.
func buildPipeline(name string, scorers []ScorerWeight) (Pipeline, error) {
	pr, ok := LookupPreset(name)
	if !ok {
		return Pipeline{}, fmt.Errorf("pick: unknown preset %q; use one of %s", name, strings.Join(PresetNames(), ", "))
	}
	p := Pipeline{Picker: pr.Picker.make().(Picker), Plain: pr.Plain}
	for _, f := range pr.Filters {
		p.Filters = append(p.Filters, f.make().(Filter))
	}
	for _, s := range pr.Scorers {
		p.Scorers = append(p.Scorers, WeightedScorer{s.Plugin.make().(Scorer), s.Weight})
	}
	if len(scorers) > 0 {
		p.Scorers = p.Scorers[:0:0]
		for _, sw := range scorers {
			s, err := NewScorer(sw.Name)
			if err != nil {
				return Pipeline{}, err
			}
			p.Scorers = append(p.Scorers, WeightedScorer{s, sw.Weight})
		}
	}
	return p, nil
}
