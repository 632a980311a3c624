package kube

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// This file chooses the objects handed to the translation (adapt): the
// Gateways kvgate serves, the routes attached to them and what those refer
// to. It reads fields only to follow references; every meaning is adapt's.

// str is the string at path in o, or "".
func str(o map[string]any, path ...string) string {
	v, _ := at(o, path...).(string)
	return v
}

// list is the list at path in o, or nil.
func list(o map[string]any, path ...string) []any {
	v, _ := at(o, path...).([]any)
	return v
}

func at(o map[string]any, path ...string) any {
	var v any = o
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// ref is a namespaced name: "namespace/name".
func ref(ns, name string) string { return ns + "/" + name }

func nsName(o map[string]any) string {
	return ref(str(o, "metadata", "namespace"), str(o, "metadata", "name"))
}

// objects lists the store of the informer key, synced, sorted by creation
// time then namespace/name (Gateway API's order among equals), or nil when
// the kind is not watched or not yet synced.
func (c *Controller) objects(key string) []map[string]any {
	in := c.informer(key)
	if in == nil {
		return nil
	}
	items := in.inf.GetStore().List()
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		if u, ok := it.(*unstructured.Unstructured); ok {
			out = append(out, u.Object)
		}
	}
	sortObjects(out)
	return out
}

func sortObjects(objs []map[string]any) {
	slices.SortFunc(objs, func(a, b map[string]any) int {
		return cmp.Or(
			strings.Compare(str(a, "metadata", "creationTimestamp"), str(b, "metadata", "creationTimestamp")),
			strings.Compare(nsName(a), nsName(b)))
	})
}

// indexed lists the objects of informer key under index value v, sorted.
func (c *Controller) indexed(key, index, v string) []map[string]any {
	in := c.informer(key)
	if in == nil {
		return nil
	}
	items, err := in.inf.GetIndexer().ByIndex(index, v)
	if err != nil {
		return nil
	}
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		if u, ok := it.(*unstructured.Unstructured); ok {
			out = append(out, u.Object)
		}
	}
	sortObjects(out)
	return out
}

// input is what one translation is given.
type input struct {
	objs    []map[string]any
	secrets []string // namespace/name of the Secrets HTTPS listeners name
	// counts for the log line of an applied configuration
	gateways, routes int
}

// gather chooses the translation's input from the informers' caches. An
// error is a state with nothing to serve (no Gateway of ours yet).
func (c *Controller) gather() (*input, error) {
	if c.informer(kGatewayClass) == nil || c.informer(kGateway) == nil {
		return nil, fmt.Errorf("the Gateway API CRDs (gatewayclasses and gateways.%s) are not installed, or not yet listed", groupGateway)
	}
	classes := map[string]bool{}
	for _, gc := range c.objects(kGatewayClass) {
		if str(gc, "spec", "controllerName") == c.opts.ControllerName {
			classes[str(gc, "metadata", "name")] = true
		}
	}
	in := &input{}
	gateways := map[string]bool{}
	for _, gw := range c.objects(kGateway) {
		if !classes[str(gw, "spec", "gatewayClassName")] {
			continue
		}
		gateways[nsName(gw)] = true
		in.objs = append(in.objs, gw)
		in.secrets = append(in.secrets, listenerSecrets(gw)...)
	}
	if len(gateways) == 0 {
		if len(classes) == 0 {
			return nil, fmt.Errorf("no GatewayClass has controllerName %s (kvgate serves the Gateways of such classes)", c.opts.ControllerName)
		}
		return nil, fmt.Errorf("no Gateway of GatewayClass %s yet", strings.Join(sortedKeys(classes), ", "))
	}
	in.gateways = len(gateways)

	refs := newRefs()
	for _, r := range c.objects(kHTTPRoute) {
		if !attached(r, gateways) {
			continue
		}
		in.routes++
		in.objs = append(in.objs, r)
		refs.route(r)
	}
	for _, key := range sortedKeys(refs.services) {
		if svc := c.get(kService, key); svc != nil {
			in.objs = append(in.objs, svc)
		}
		in.objs = append(in.objs, c.indexed(kEndpointSlice, byService, key)...)
	}
	var pools []map[string]any
	for _, pk := range []string{kPool, kPoolAlpha} {
		for _, key := range sortedKeys(refs.pools[pk]) {
			if p := c.get(pk, key); p != nil {
				pools = append(pools, p)
			}
		}
	}
	in.objs = append(in.objs, pools...)
	podInformers, pending := c.watchPods(c.podScopes(pools))
	if len(pending) > 0 {
		return nil, &errPending{what: pending}
	}
	in.objs = append(in.objs, scopedPods(podInformers)...)
	for _, k := range []string{kModel, kObjective} {
		for _, o := range c.objects(k) {
			key := ref(str(o, "metadata", "namespace"), str(o, "spec", "poolRef", "name"))
			if refs.pools[kPoolAlpha][key] || refs.pools[kPool][key] {
				in.objs = append(in.objs, o)
			}
		}
	}
	in.objs = append(in.objs, c.objects(kGrant)...)
	in.objs = append(in.objs, c.objects(kPolicy)...)
	slices.Sort(in.secrets)
	in.secrets = slices.Compact(in.secrets)
	return in, nil
}

// get is one object of informer key by namespace/name, or nil.
func (c *Controller) get(key, nsname string) map[string]any {
	in := c.informer(key)
	if in == nil {
		return nil
	}
	it, ok, err := in.inf.GetStore().GetByKey(nsname)
	if err != nil || !ok {
		return nil
	}
	u, ok := it.(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	return u.Object
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// listenerSecrets are the Secrets a Gateway's HTTPS listeners name.
func listenerSecrets(gw map[string]any) []string {
	var out []string
	ns := str(gw, "metadata", "namespace")
	for _, l := range list(gw, "spec", "listeners") {
		lm := asMap(l)
		if str(lm, "protocol") != "HTTPS" {
			continue
		}
		for _, cr := range list(lm, "tls", "certificateRefs") {
			m := asMap(cr)
			if k := str(m, "kind"); k != "" && k != "Secret" || str(m, "group") != "" && str(m, "group") != "core" {
				continue
			}
			rns := cmp.Or(str(m, "namespace"), ns)
			if name := str(m, "name"); name != "" {
				out = append(out, ref(rns, name))
			}
		}
	}
	return out
}

// attached reports whether an HTTPRoute names one of gateways as a parent.
func attached(r map[string]any, gateways map[string]bool) bool {
	ns := str(r, "metadata", "namespace")
	for _, p := range list(r, "spec", "parentRefs") {
		m := asMap(p)
		if cmp.Or(str(m, "group"), groupGateway) == groupGateway && cmp.Or(str(m, "kind"), "Gateway") == "Gateway" &&
			gateways[ref(cmp.Or(str(m, "namespace"), ns), str(m, "name"))] {
			return true
		}
	}
	return false
}

// refs are the backends the chosen routes refer to.
type refs struct {
	services map[string]bool
	pools    map[string]map[string]bool // informer key → namespace/name
}

func newRefs() *refs {
	return &refs{services: map[string]bool{}, pools: map[string]map[string]bool{kPool: {}, kPoolAlpha: {}}}
}

// route records the backendRefs of r's rules, those of mirrors included.
func (rf *refs) route(r map[string]any) {
	ns := str(r, "metadata", "namespace")
	for _, rule := range list(r, "spec", "rules") {
		rm := asMap(rule)
		rf.mirrors(ns, list(rm, "filters"))
		for _, b := range list(rm, "backendRefs") {
			bm := asMap(b)
			rf.backend(ns, bm)
			rf.mirrors(ns, list(bm, "filters"))
		}
	}
}

func (rf *refs) mirrors(ns string, filters []any) {
	for _, f := range filters {
		if b := asMap(at(asMap(f), "requestMirror", "backendRef")); b != nil {
			rf.backend(ns, b)
		}
	}
}

func (rf *refs) backend(ns string, b map[string]any) {
	key := ref(cmp.Or(str(b, "namespace"), ns), str(b, "name"))
	switch group, kind := str(b, "group"), cmp.Or(str(b, "kind"), "Service"); {
	case (group == "" || group == "core") && kind == "Service":
		rf.services[key] = true
	case group == groupInference && kind == "InferencePool":
		rf.pools[kPool][key] = true
	case group == groupInferX && kind == "InferencePool":
		rf.pools[kPoolAlpha][key] = true
	}
}

// poolSelector reads an InferencePool's pod labels in either spelling
// (v1's matchLabels, the alphas' flat map), only to choose which Pods to
// hand over; adapt reads the selector again, with its checks.
func poolSelector(p map[string]any) map[string]string {
	sel := asMap(at(p, "spec", "selector"))
	if ml := asMap(sel["matchLabels"]); ml != nil {
		sel = ml
	}
	out := map[string]string{}
	for k, v := range sel {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}
