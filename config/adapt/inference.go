package adapt

import (
	"slices"

	"github.com/kvgate/kvgate/config"
)

// criticalities maps InferenceModel criticality to route priority.
var criticalities = map[string]int{"Critical": 1, "Standard": 0, "Sheddable": -1}

// modelPool resolves an InferenceModel or InferenceObjective poolRef.
func (a *adapter) modelPool(res Resource, ref poolRef) (string, bool) {
	if ref.Kind != "" && ref.Kind != "InferencePool" {
		a.warn(res, "spec.poolRef.kind", "%s is not supported (only InferencePool); ignored", ref.Kind)
		return "", false
	}
	p, ok := a.ipools[res.Namespace+"/"+ref.Name]
	if !ok {
		a.warn(res, "spec.poolRef", "InferencePool %s/%s is not in the input; ignored", res.Namespace, ref.Name)
		return "", false
	}
	return p.name, true
}

// inferenceModel adds, for each route that sends to the model's pool, a
// route matching the model that rewrites it to the target models and carries
// the criticality as priority. The router ranks a model match above the same
// route without one.
func (a *adapter) inferenceModel(res Resource, m *modelDoc) {
	pool, ok := a.modelPool(res, m.Spec.PoolRef)
	if !ok {
		return
	}
	if m.Spec.ModelName == "" {
		a.warn(res, "spec.modelName", "is empty; ignored")
		return
	}
	var prio *int
	if c := m.Spec.Criticality; c != nil {
		if v, ok := criticalities[*c]; ok {
			prio = &v
		} else {
			a.warn(res, "spec.criticality", "%q is not one of Critical, Standard, Sheddable; ignored", *c)
		}
	}
	var targets []config.ModelTarget
	for _, t := range m.Spec.TargetModels {
		w := 1
		if t.Weight != nil {
			w = *t.Weight
		}
		targets = append(targets, config.ModelTarget{Model: t.Name, Weight: w})
	}
	if prio == nil && len(targets) == 0 {
		return // the model is served as asked with the default priority: nothing to add
	}
	model := &config.StringMatch{Value: m.Spec.ModelName}
	found := false
	for i := 0; i < len(a.cfg.Routes); i++ {
		base := a.cfg.Routes[i]
		if !a.baseRoutes[base.Name] || !slices.ContainsFunc(base.Backends, func(b config.Backend) bool { return b.Pool == pool }) {
			continue
		}
		found = true
		r := base
		r.Name = a.unique("routes", res.Namespace, base.Name+"-"+res.Name)
		r.Priority = prio
		r.Matches = nil
		for _, mt := range base.Matches {
			mt.Model = model
			r.Matches = append(r.Matches, mt)
		}
		if len(r.Matches) == 0 {
			r.Matches = []config.Match{{Model: model}}
		}
		r.Backends = slices.Clone(base.Backends)
		for j := range r.Backends {
			if r.Backends[j].Pool == pool {
				r.Backends[j].ModelRewrite = targets
			}
		}
		a.cfg.Routes = slices.Insert(a.cfg.Routes, i, r)
		a.routeFrom = slices.Insert(a.routeFrom, i, res)
		i++
	}
	if !found {
		name := a.unique("routes", res.Namespace, res.Name)
		a.cfg.Routes = append(a.cfg.Routes, config.Route{Name: name, Matches: []config.Match{{Model: model}},
			Backends: []config.Backend{{Pool: pool, ModelRewrite: targets}}, Priority: prio})
		a.routeFrom = append(a.routeFrom, res)
		a.warn(res, "spec.poolRef", "no HTTPRoute sends traffic to InferencePool %s; added route %s matching model %q on every listener", m.Spec.PoolRef.Name, name, m.Spec.ModelName)
	}
}

// inferenceObjective adds a name → priority entry to the pool's objectives.
func (a *adapter) inferenceObjective(res Resource, o *objectiveDoc) {
	pool, ok := a.modelPool(res, o.Spec.PoolRef)
	if !ok {
		return
	}
	obj := config.Objective{Name: res.Name}
	if o.Spec.Priority != nil {
		obj.Priority = *o.Spec.Priority
	}
	for i := range a.cfg.Pools {
		p := &a.cfg.Pools[i]
		if p.Name != pool || p.Inference == nil {
			continue
		}
		if slices.ContainsFunc(p.Inference.Objectives, func(x config.Objective) bool { return x.Name == obj.Name }) {
			a.warn(res, "metadata.name", "pool %s already has an objective %s (from another namespace); ignored", pool, obj.Name)
			return
		}
		p.Inference.Objectives = append(p.Inference.Objectives, obj)
	}
}
