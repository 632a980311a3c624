package adapt

import (
	"fmt"
	"strings"

	"github.com/kvgate/kvgate/config"
)

// conditionKeys are the `when` keys kvgate evaluates (mtls.CompileAuthz).
var conditionKeys = []string{"source.ip", "source.principal", "source.namespace", "destination.port"}

func supportedKey(k string) bool {
	if strings.HasPrefix(k, "request.headers[") && strings.HasSuffix(k, "]") && len(k) > len("request.headers[]") {
		return true
	}
	for _, s := range conditionKeys {
		if k == s {
			return true
		}
	}
	return false
}

// policy converts an Istio AuthorizationPolicy. Whatever kvgate cannot
// evaluate is handled the way Istio handles it, failing closed: an ALLOW rule
// with such a part is dropped whole (it would allow more without it); in a
// DENY rule only that part is dropped (the rule then denies more).
func (a *adapter) policy(res Resource, p *policyDoc, unknown []string) {
	action := p.Spec.Action
	if action == "" {
		action = "ALLOW"
	}
	if action != "ALLOW" && action != "DENY" {
		a.warn(res, "spec.action", "%s is not supported (ALLOW or DENY); policy ignored", action)
		return
	}
	tainted := map[int][]string{}
	for _, u := range unknown {
		var i int
		if _, err := fmt.Sscanf(u, "spec.rules[%d]", &i); err == nil {
			tainted[i] = append(tainted[i], strings.TrimPrefix(u, fmt.Sprintf("spec.rules[%d].", i)))
			continue
		}
		a.warn(res, u, "is not supported; ignored, so the policy applies to every pool its selector and namespace allow")
	}
	pol := config.AuthorizationPolicy{Action: action}
	pools, ok := a.policyPools(res, p)
	if !ok {
		return
	}
	pol.Pools = pools
	rules := []config.AuthzRule{}
	for i, r := range p.Spec.Rules {
		path := fmt.Sprintf("spec.rules[%d]", i)
		var cr config.AuthzRule
		for _, f := range r.From {
			cr.From = append(cr.From, f.Source)
		}
		for _, t := range r.To {
			cr.To = append(cr.To, t.Operation)
		}
		bad := tainted[i]
		for j, w := range r.When {
			if supportedKey(w.Key) {
				cr.When = append(cr.When, w)
			} else {
				bad = append(bad, fmt.Sprintf("when[%d].key %s", j, w.Key))
			}
		}
		if len(bad) == 0 {
			rules = append(rules, cr)
			continue
		}
		what := strings.Join(bad, ", ")
		if action == "ALLOW" {
			a.warn(res, path, "%s cannot be evaluated by kvgate; this ALLOW rule is dropped (fail closed, as Istio does)", what)
			continue
		}
		a.warn(res, path, "%s cannot be evaluated by kvgate; ignored in this DENY rule, which therefore denies more (fail closed, as Istio does)", what)
		rules = append(rules, cr)
	}
	if len(p.Spec.Rules) > 0 && len(rules) == 0 && action == "ALLOW" {
		a.warn(res, "spec.rules", "no rule is left, so this policy allows nothing on its pools")
	}
	if len(rules) > 0 {
		pol.Rules = rules
	}
	pol.Name = a.unique("authorization", res.Namespace, res.Name)
	a.cfg.Authorization = append(a.cfg.Authorization, pol)
	a.policyFrom = append(a.policyFrom, res)
}

// policyPools returns the pools a policy applies to (nil: every pool), or
// false when it applies to none in the input. A pool's labels are its
// selector's merged with --labels; a policy outside the root namespace
// applies only to pools of its namespace.
func (a *adapter) policyPools(res Resource, p *policyDoc) ([]string, bool) {
	root := res.Namespace == a.opts.RootNamespace
	var match map[string]string
	if s := p.Spec.Selector; s != nil {
		match = s.MatchLabels
	}
	if root && len(match) == 0 {
		return nil, true
	}
	var out []string
	for _, pc := range a.cfg.Pools {
		info := a.pools[pc.Name]
		if info == nil || (!root && info.namespace != res.Namespace) {
			continue
		}
		ok := true
		for k, v := range match {
			if info.labels[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, pc.Name)
		}
	}
	if len(out) == 0 {
		a.warn(res, "spec.selector", "applies to no pool in the input (pools match by namespace and by labels from their selector or --labels POOL=k=v,...); policy ignored")
		return nil, false
	}
	return out, true
}
