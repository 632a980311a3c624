package adapt

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/kvgate/kvgate/config"
	"gopkg.in/yaml.v3"
)

// inferencePoolDoc reads an InferencePool of any version. Published
// manifests mix the versions' field names (an inference.networking.x-k8s.io
// v1alpha1 pool written with v1's selector.matchLabels and targetPorts, or a
// v1 pool rendered with v1alpha2's flat selector and targetPortNumber), so
// every spelling is read under every version; one that is not the declared
// version's own is a warning naming the field and its line. What kvgate
// cannot read (a selector that is not a mapping of labels, matchExpressions,
// target ports that disagree) is an error.
func (a *adapter) inferencePoolDoc(d doc, p *poolDoc) {
	res := d.res
	_, version := splitAPIVersion(d.apiVersion)
	v1 := version == "v1"
	spec := lookup(d.node, "spec")
	selector, selOK := a.poolSelector(res, d.apiVersion, v1, keyLine(spec, "selector"), &p.Spec.Selector)
	ports, portsOK := a.poolPorts(res, d.apiVersion, v1, spec, p)

	const inProcess = "kvgate picks endpoints in process (inference picker prefix-affinity); the external endpoint picker is not called"
	for _, ref := range []struct {
		key  string
		node *yaml.Node
		own  bool
	}{{"endpointPickerRef", &p.Spec.EndpointPickerRef, v1}, {"extensionRef", &p.Spec.ExtensionRef, !v1}} {
		if ref.node.IsZero() {
			continue
		}
		if ref.own {
			a.warnAt(res, keyLine(spec, ref.key), "spec."+ref.key, inProcess)
			continue
		}
		a.warnAt(res, keyLine(spec, ref.key), "spec."+ref.key, "is the %s spelling (%s writes %s); either way, %s",
			otherVersion(v1), d.apiVersion, ownSpelling(v1, "picker"), inProcess)
	}
	a.inferencePool(res, selector, ports, selOK && portsOK)
}

// inferencePool adds the kvgate pool for an InferencePool. When its fields
// could not be read (readOK false, already an error) the pool is still
// added, so that routes to it resolve and the error stands alone.
func (a *adapter) inferencePool(res Resource, selector map[string]string, ports []int, readOK bool) {
	pool := config.Pool{Name: a.unique("pools", res.Namespace, res.Name), Inference: &config.Inference{}}
	info := &poolInfo{name: pool.Name, namespace: res.Namespace, selector: selector, from: "InferencePool " + res.Namespace + "/" + res.Name}
	info.labels = a.labels(info, []string{pool.Name, res.Name, res.Namespace + "/" + res.Name})
	a.ipools[res.Namespace+"/"+res.Name] = info
	switch eps, ok := a.flagEndpoints([]string{pool.Name, res.Name, res.Namespace + "/" + res.Name}); {
	case ok:
		pool.Endpoints = withPorts(eps, ports)
	case a.podsSeen || a.opts.Live:
		pool.Endpoints = a.podEndpoints(res.Namespace, selector, ports)
	default:
		pool.Endpoints = a.selectedEndpoints(res.Namespace, selector, ports)
	}
	if len(pool.Endpoints) == 0 && readOK && !a.opts.Live {
		a.fail(res, "", "no endpoints for pool %s: pass --endpoints %s=ADDR[:PORT],... (or include its ready Pods, or a Service with the same selector and its EndpointSlices, in the input)", pool.Name, pool.Name)
	}
	a.addPool(res, pool, info)
}

// otherVersion names the version whose spelling a field is in, when it is
// not the declared version's own.
func otherVersion(v1 bool) string {
	if v1 {
		return "inference.networking.x-k8s.io/v1alpha2"
	}
	return "inference.networking.k8s.io/v1"
}

// ownSpelling is how the declared version writes a field.
func ownSpelling(v1 bool, field string) string {
	switch {
	case field == "picker" && v1:
		return "endpointPickerRef"
	case field == "picker":
		return "extensionRef"
	case field == "selector" && v1:
		return "selector: {matchLabels: {app: vllm}}"
	case field == "selector":
		return "selector: {app: vllm}"
	}
	return field
}

// poolSelector reads spec.selector in either spelling: v1's LabelSelector
// {matchLabels: {k: v}} or the alphas' plain map {k: v}. line is the line of
// the selector key.
func (a *adapter) poolSelector(res Resource, av string, v1 bool, line int, n *yaml.Node) (map[string]string, bool) {
	const field = "spec.selector"
	n = resolve(n)
	if n == nil || n.IsZero() || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		a.failAt(res, line, field, "is %s; write the pod labels as a mapping, like %s", describe(n), ownSpelling(v1, "selector"))
		return nil, false
	}
	var ml, me *yaml.Node
	var mlLine int
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch n.Content[i].Value {
		case "matchLabels":
			ml, mlLine = resolve(n.Content[i+1]), n.Content[i].Line
		case "matchExpressions":
			me = n.Content[i]
		}
	}
	if ml == nil && me == nil {
		labels, ok := a.labelMap(res, field, n)
		if ok && v1 && len(labels) > 0 {
			a.warnAt(res, line, field, "is the %s spelling (%s writes %s); read as matchLabels %s",
				otherVersion(v1), av, ownSpelling(v1, "selector"), labelList(labels))
		}
		return labels, ok
	}
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		switch k.Value {
		case "matchLabels":
		case "matchExpressions":
			a.failAt(res, k.Line, field+".matchExpressions", "kvgate selects a pool's pods by labels alone; write the selector as matchLabels, like %s", ownSpelling(true, "selector"))
			ok = false
		default:
			a.failAt(res, k.Line, field+"."+k.Value, "a selector written with matchLabels holds nothing else; move %s under matchLabels", k.Value)
			ok = false
		}
	}
	if ml == nil || !ok {
		return nil, false
	}
	if ml.Kind != yaml.MappingNode {
		a.failAt(res, mlLine, field+".matchLabels", "is %s; write the labels as a mapping, like {app: vllm}", describe(ml))
		return nil, false
	}
	labels, ok := a.labelMap(res, field+".matchLabels", ml)
	if ok && !v1 {
		a.warnAt(res, mlLine, field+".matchLabels", "is the %s spelling (%s writes the labels directly: %s); read as selector %s",
			otherVersion(v1), av, ownSpelling(v1, "selector"), labelList(labels))
	}
	return labels, ok
}

// labelMap reads a mapping of label keys to string values.
func (a *adapter) labelMap(res Resource, field string, n *yaml.Node) (map[string]string, bool) {
	labels := map[string]string{}
	first := map[string]int{}
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		p := field + "." + k.Value
		switch {
		case k.Kind != yaml.ScalarNode || k.Value == "":
			a.failAt(res, k.Line, field, "a label key is %s; write keys like app or app.kubernetes.io/name", describe(k))
			ok = false
		case first[k.Value] > 0:
			a.failAt(res, k.Line, p, "is repeated (first at line %d); keep one", first[k.Value])
			ok = false
		case v.Kind != yaml.ScalarNode:
			a.failAt(res, k.Line, p, "is %s; a label value is a string, like %s: vllm", describe(v), k.Value)
			ok = false
		case v.ShortTag() == "!!null":
			labels[k.Value] = ""
		default:
			labels[k.Value] = v.Value
		}
		if k.Kind == yaml.ScalarNode && first[k.Value] == 0 {
			first[k.Value] = k.Line
		}
	}
	return labels, ok
}

// poolPorts reads the target ports from v1's targetPorts [{number: N}], the
// alphas' targetPortNumber, or targetPort (in no version, but published);
// several of them must agree.
func (a *adapter) poolPorts(res Resource, av string, v1 bool, spec *yaml.Node, p *poolDoc) ([]int, bool) {
	var list []int
	for _, tp := range p.Spec.TargetPorts {
		list = append(list, tp.Number)
	}
	one := func(n int) []int {
		if n == 0 {
			return nil
		}
		return []int{n}
	}
	var ports []int
	var from string
	ok := true
	for _, sp := range []struct {
		key   string
		ports []int
		own   bool
	}{
		{"targetPorts", list, v1},
		{"targetPortNumber", one(p.Spec.TargetPortNumber), !v1},
		{"targetPort", one(p.Spec.TargetPort), false},
	} {
		if len(sp.ports) == 0 {
			continue
		}
		field, line := "spec."+sp.key, keyLine(spec, sp.key)
		if i := slices.IndexFunc(sp.ports, func(n int) bool { return n < 1 || n > 65535 }); i >= 0 {
			a.failAt(res, line, field, "%d is not a port; use a number from 1 to 65535", sp.ports[i])
			ok = false
			continue
		}
		switch {
		case sp.own:
		case sp.key == "targetPort":
			a.warnAt(res, line, field, "is in no InferencePool version (%s writes %s); read as target port %s",
				av, ownPorts(v1, sp.ports), portList(sp.ports))
		default:
			a.warnAt(res, line, field, "is the %s spelling (%s writes %s); read as target port %s",
				otherVersion(v1), av, ownPorts(v1, sp.ports), portList(sp.ports))
		}
		if ports == nil {
			ports, from = sp.ports, field
		} else if !slices.Equal(ports, sp.ports) {
			a.failAt(res, line, field, "says %s but %s says %s; keep one", portList(sp.ports), from, portList(ports))
			ok = false
		}
	}
	return ports, ok
}

// ownPorts is how the declared version writes ports.
func ownPorts(v1 bool, ports []int) string {
	if v1 {
		items := make([]string, len(ports))
		for i, p := range ports {
			items[i] = "{number: " + strconv.Itoa(p) + "}"
		}
		return "targetPorts: [" + strings.Join(items, ", ") + "]"
	}
	return "targetPortNumber: " + strconv.Itoa(ports[0])
}

func portList(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ", ")
}

// labelList prints labels sorted as k=v,k=v, the form --labels takes.
func labelList(labels map[string]string) string {
	keys := slices.Sorted(maps.Keys(labels))
	for i, k := range keys {
		keys[i] = k + "=" + labels[k]
	}
	return strings.Join(keys, ",")
}

// describe names what a node is, for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return fmt.Sprintf("the scalar %q", v)
	}
	return "not a value"
}

// keyLine is the line of key in mapping n, or 0.
func keyLine(n *yaml.Node, key string) int {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return 0
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i].Line
		}
	}
	return 0
}

// podEndpoints is every target port of each ready Pod in namespace ns whose
// labels hold the selector: one endpoint per port (per data-parallel rank
// of a model server), sorted.
func (a *adapter) podEndpoints(ns string, selector map[string]string, ports []int) []string {
	if len(selector) == 0 {
		return nil
	}
	var out []string
	for _, p := range a.pods[ns] {
		if !p.ready() {
			continue
		}
		match := true
		for k, v := range selector {
			if got, ok := p.Metadata.Labels[k]; !ok || got != v {
				match = false
				break
			}
		}
		if match {
			out = append(out, withPorts([]string{p.Status.PodIP}, ports)...)
		}
	}
	slices.Sort(out)
	return withPorts(out, nil)
}
