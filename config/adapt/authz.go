package adapt

import (
	"fmt"
	"maps"
	"slices"
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
func (a *adapter) policy(d doc, p *policyDoc, unknown []fieldAt) {
	res := d.res
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
		if _, err := fmt.Sscanf(u.path, "spec.rules[%d]", &i); err == nil {
			tainted[i] = append(tainted[i], strings.TrimPrefix(u.path, fmt.Sprintf("spec.rules[%d].", i)))
			continue
		}
		a.warnAt(res, u.line, u.path, "is not supported; ignored, so the policy applies to every pool its selector and namespace allow")
	}
	pol := config.AuthorizationPolicy{Action: action}
	pools, ok := a.policyPools(res, keyLine(lookup(d.node, "spec"), "selector"), p)
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
// applies only to pools of its namespace. line is the selector's line.
func (a *adapter) policyPools(res Resource, line int, p *policyDoc) ([]string, bool) {
	root := res.Namespace == a.opts.RootNamespace
	var match map[string]string
	if s := p.Spec.Selector; s != nil {
		match = s.MatchLabels
	}
	if root && len(match) == 0 {
		return nil, true
	}
	var out []string
	var scope []*poolInfo // the pools the policy's namespace reaches
	for _, pc := range a.cfg.Pools {
		info := a.pools[pc.Name]
		if info == nil || (!root && info.namespace != res.Namespace) {
			continue
		}
		scope = append(scope, info)
		if hasLabels(info.labels, match) {
			out = append(out, pc.Name)
		}
	}
	if len(out) == 0 {
		a.warnAt(res, line, "spec.selector", "%s; policy ignored", a.whyNoPool(res, root, match, scope))
		return nil, false
	}
	return out, true
}

// hasLabels reports whether labels hold every key of match with its value.
func hasLabels(labels, match map[string]string) bool {
	for k, v := range match {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}

// whyNoPool explains why a policy selects no pool and says what would make
// it apply: the --labels flag, with its value, for each pool whose pods
// might carry the selected labels, or the manifest edit when no flag can.
func (a *adapter) whyNoPool(res Resource, root bool, match map[string]string, scope []*poolInfo) string {
	if len(scope) == 0 {
		var nss []string
		for _, info := range a.pools {
			if !slices.Contains(nss, info.namespace) {
				nss = append(nss, info.namespace)
			}
		}
		if len(nss) == 0 {
			return "selects no pool: the input has no pool"
		}
		slices.Sort(nss)
		return fmt.Sprintf("selects no pool: no pool of the input is in namespace %s (they are in %s), and a policy outside %s applies only to "+
			"workloads of its own namespace, as in Istio. No flag changes that: put the policy in the pools' namespace, or give the "+
			"Service or InferencePool behind the pool metadata.namespace: %s", res.Namespace, strings.Join(nss, ", "), a.opts.RootNamespace, res.Namespace)
	}
	where := "in namespace " + res.Namespace
	if root {
		where = "in the input"
	}
	var have, flags, fits []string
	for _, info := range scope {
		have = append(have, "pool "+info.name+" has "+describeLabels(info))
		missing := map[string]string{}
		conflict := false
		for k, v := range match {
			if lv, ok := info.labels[k]; !ok {
				missing[k] = v
			} else if lv != v {
				conflict = true
			}
		}
		if !conflict {
			fits = append(fits, info.name)
			flags = append(flags, "--labels "+info.name+"="+labelList(missing))
		}
	}
	msg := fmt.Sprintf("selects no pool: no pool %s has the workload labels %s (%s)", where, labelList(match), joinSome(have, "; "))
	switch len(flags) {
	case 0:
		return msg + ". Every pool there has other values for these labels, so no flag is right; check the selector"
	case 1:
		return msg + ". If the pods behind pool " + fits[0] + " carry them, pass " + flags[0]
	}
	return msg + ". If the pods behind a pool carry them, pass its flag: " + joinSome(flags, " or ")
}

// joinSome joins the first few items and counts the rest, so that a
// message about a large input stays readable.
func joinSome(items []string, sep string) string {
	const some = 6
	if len(items) <= some {
		return strings.Join(items, sep)
	}
	return strings.Join(items[:some], sep) + fmt.Sprintf("%s%d more", sep, len(items)-some)
}

// describeLabels says which labels a pool has and where they come from.
func describeLabels(info *poolInfo) string {
	if len(info.labels) == 0 {
		return "no labels"
	}
	var from []string
	if info.from != "" {
		from = append(from, info.from+"'s selector")
	}
	for _, k := range info.flagKeys {
		from = append(from, "--labels "+k)
	}
	return labelList(info.labels) + ", from " + strings.Join(from, " and ")
}

// unusedLabels warns about --labels keys that named no pool.
func (a *adapter) unusedLabels() {
	var pools []string
	for _, pc := range a.cfg.Pools {
		pools = append(pools, pc.Name)
	}
	for _, k := range slices.Sorted(maps.Keys(a.opts.Labels)) {
		if a.labelKeys[k] {
			continue
		}
		known := "the input has no pool"
		if len(pools) > 0 {
			known = "pools are " + joinSome(pools, ", ")
		}
		a.warn(Resource{}, "", "--labels %s names no pool (%s; a Service's pool is also named by the Service, an InferencePool's by its name); ignored", k, known)
	}
}
