package adapt

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
)

// FromObjects reads the kinds a cluster holds by the thousand, EndpointSlice
// and Pod (an entry per model-server endpoint), straight from their decoded
// form (maps, lists, strings, numbers and booleans) into sliceDoc and
// podDoc. Every other kind goes through a YAML node tree (objectNode) and
// the YAML decoder; for these two that tree would be built, decoded, walked
// for unknown keys and dropped again on every translation: about 40 MB of
// garbage at 10,000 endpoints, for a few strings and booleans each. What is
// read, which keys are warned about and what is an error are the same on
// both ways (TestDirectMatchesYAML).

// directDoc is o as a doc without a node, when o is of a kind read this
// way and has a name (the node path says what is wrong with one without).
func directDoc(o map[string]any) (doc, bool) {
	av, _ := o["apiVersion"].(string)
	kind, _ := o["kind"].(string)
	if !(av == groupDiscovery+"/v1" && kind == "EndpointSlice" || av == "v1" && kind == "Pod") {
		return doc{}, false
	}
	md, _ := o["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	if name == "" {
		return doc{}, false
	}
	ns, _ := md["namespace"].(string)
	return doc{res: Resource{Kind: kind, Name: name, Namespace: namespaceOrDefault(ns)}, apiVersion: av, obj: o}, true
}

// mapReader is a *Doc type that reads itself from a decoded object.
type mapReader interface {
	readMap(o map[string]any, r *mapRead)
}

var (
	_ mapReader = (*sliceDoc)(nil)
	_ mapReader = (*podDoc)(nil)
)

// mapRead is one object being read: the keys not understood (paths as
// unknownFields writes them) and the first value of a wrong type.
type mapRead struct {
	unknown []fieldAt
	err     error
}

// readMapped reads d.obj into out, as decodeInto reads d.node.
func readMapped(d doc, out mapReader) ([]fieldAt, error) {
	var r mapRead
	out.readMap(d.obj, &r)
	if r.err != nil {
		return nil, &Error{Resource: d.res, Msg: fmt.Sprintf("cannot decode: %v; check the field types against the %s %s schema", r.err, d.apiVersion, d.res.Kind), Err: r.err}
	}
	return r.unknown, nil
}

// where is the path of a value, built into a string only for a message
// (an EndpointSlice has thousands of values): key, or list[i].key when
// list is set.
type where struct {
	list string
	i    int
	key  string
}

func at(key string) where { return where{key: key} }

func (w where) String() string {
	if w.list == "" {
		return w.key
	}
	return joinKey(w.list+"["+strconv.Itoa(w.i)+"]", w.key)
}

// in is the path of key under w.
func (w where) in(key string) where {
	w.key = joinKey(w.key, key)
	return w
}

func (r *mapRead) wrong(w where, want string, got any) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: expected %s, got %T", w, want, got)
	}
}

// keys records the keys of m that struct type t has no field for.
func (r *mapRead) keys(m map[string]any, t reflect.Type, w where) {
	fields := fieldsOf(t)
	var bad []string
	for k := range m {
		if _, ok := fields[k]; !ok {
			bad = append(bad, k)
		}
	}
	slices.Sort(bad) // the node path's order: objectNode sorts keys
	for _, k := range bad {
		r.unknown = append(r.unknown, fieldAt{path: w.in(k).String()})
	}
}

// joinKey is key under path ("a.b"), the path unknown-key warnings name;
// unknownFields (YAML path) and where (direct path) both build with it.
func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mapAt is v as a mapping (nil is an absent one).
func (r *mapRead) mapAt(v any, w where) map[string]any {
	m, ok := v.(map[string]any)
	if !ok && v != nil {
		r.wrong(w, "a mapping", v)
	}
	return m
}

func (r *mapRead) listAt(v any, w where) []any {
	l, ok := v.([]any)
	if !ok && v != nil {
		r.wrong(w, "a list", v)
	}
	return l
}

// strAt is v as a string; a number or boolean is its text, as the YAML
// decoder reads a scalar into a string.
func (r *mapRead) strAt(v any, w where) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool, int, int32, int64, float64:
		n, err := objectNode(x, 0)
		if err == nil {
			return n.Value
		}
	}
	r.wrong(w, "a string", v)
	return ""
}

func (r *mapRead) strPtr(v any, w where) *string {
	if v == nil {
		return nil
	}
	s := r.strAt(v, w)
	return &s
}

func (r *mapRead) boolPtr(v any, w where) *bool {
	if v == nil {
		return nil
	}
	var b bool
	switch x := v.(type) {
	case bool:
		b = x
	case string: // YAML 1.1's spellings, which the YAML decoder reads into a bool
		switch x {
		case "y", "Y", "yes", "Yes", "YES", "on", "On", "ON":
			b = true
		case "n", "N", "no", "No", "NO", "off", "Off", "OFF":
		default:
			r.wrong(w, "a boolean", v)
			return nil
		}
	default:
		r.wrong(w, "a boolean", v)
		return nil
	}
	if b {
		return &yes
	}
	return &no
}

// yes and no are every *bool read directly (10,000 endpoints hold three
// each); nothing writes through them.
var yes, no = true, false

// intPtr reads a number as JSON (float64), client-go (int64) or a YAML
// decoder (int) gives it.
func (r *mapRead) intPtr(v any, w where) *int {
	var n int
	switch x := v.(type) {
	case nil:
		return nil
	case int:
		n = x
	case int64:
		n = int(x)
	case int32:
		n = int(x)
	case float64: // truncated, as the YAML decoder does
		if math.IsNaN(x) || math.Abs(x) >= math.MaxInt64 {
			r.wrong(w, "a number", v)
			return nil
		}
		n = int(x)
	default:
		r.wrong(w, "a number", v)
		return nil
	}
	return &n
}

func (r *mapRead) strings(v any, w where) []string {
	l := r.listAt(v, w)
	if l == nil {
		return nil
	}
	out := make([]string, len(l))
	for i, it := range l {
		if s, ok := it.(string); ok {
			out[i] = s
			continue
		}
		w := w
		w.key += "[" + strconv.Itoa(i) + "]"
		out[i] = r.strAt(it, w)
	}
	return out
}

func (r *mapRead) labels(v any, w where) map[string]string {
	m := r.mapAt(v, w)
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, it := range m {
		out[k] = r.strAt(it, w.in(k))
	}
	return out
}

// meta reads metadata (its other keys are skipped, as on the node path).
func (r *mapRead) meta(o map[string]any) meta {
	md := r.mapAt(o["metadata"], at("metadata"))
	return meta{
		Name:      r.strAt(md["name"], at("metadata.name")),
		Namespace: r.strAt(md["namespace"], at("metadata.namespace")),
		Labels:    r.labels(md["labels"], at("metadata.labels")),
	}
}

var (
	sliceType         = reflect.TypeFor[sliceDoc]()
	sliceEndpointType = reflect.TypeFor[sliceEndpoint]()
	sliceCondType     = reflect.TypeFor[sliceConditions]()
	slicePortType     = reflect.TypeFor[slicePort]()
)

func (s *sliceDoc) readMap(o map[string]any, r *mapRead) {
	r.keys(o, sliceType, where{})
	s.APIVersion = r.strAt(o["apiVersion"], at("apiVersion"))
	s.Kind = r.strAt(o["kind"], at("kind"))
	s.Metadata = r.meta(o)
	s.AddressType = r.strAt(o["addressType"], at("addressType"))
	s.Endpoints = listOf(r, o, "endpoints", sliceEndpointType, func(m map[string]any, w where, ep *sliceEndpoint) {
		ep.Addresses = r.strings(m["addresses"], w.in("addresses"))
		c := r.mapAt(m["conditions"], w.in("conditions"))
		r.keys(c, sliceCondType, w.in("conditions"))
		// constant keys: w.in would join strings for every endpoint
		ep.Conditions = sliceConditions{
			Ready:       r.boolPtr(c["ready"], where{w.list, w.i, "conditions.ready"}),
			Serving:     r.boolPtr(c["serving"], where{w.list, w.i, "conditions.serving"}),
			Terminating: r.boolPtr(c["terminating"], where{w.list, w.i, "conditions.terminating"}),
		}
	})
	s.Ports = listOf(r, o, "ports", slicePortType, func(m map[string]any, w where, p *slicePort) {
		*p = slicePort{
			Name:        r.strPtr(m["name"], w.in("name")),
			Port:        r.intPtr(m["port"], w.in("port")),
			Protocol:    r.strAt(m["protocol"], w.in("protocol")),
			AppProtocol: r.strAt(m["appProtocol"], w.in("appProtocol")),
		}
	})
}

// listOf reads o[list], a list of mappings whose keys are t's fields, into
// a []T, item filling each element from its mapping (w names it). An absent
// list is nil; an empty one is empty.
func listOf[T any](r *mapRead, o map[string]any, list string, t reflect.Type, item func(m map[string]any, w where, dst *T)) []T {
	l := r.listAt(o[list], at(list))
	if l == nil {
		return nil
	}
	out := make([]T, len(l))
	for i, e := range l {
		w := where{list: list, i: i}
		m := r.mapAt(e, w)
		r.keys(m, t, w)
		item(m, w, &out[i])
	}
	return out
}

// readMap reads what podDoc holds; a Pod's other keys are skipped without
// a warning, as on the node path.
func (p *podDoc) readMap(o map[string]any, r *mapRead) {
	md := r.mapAt(o["metadata"], at("metadata"))
	p.Metadata.Labels = r.labels(md["labels"], at("metadata.labels"))
	if ts := md["deletionTimestamp"]; ts != nil { // a string, or a time from a YAML decoder
		p.Metadata.DeletionTimestamp = fmt.Sprint(ts)
	}
	st := r.mapAt(o["status"], at("status"))
	p.Status.PodIP = r.strAt(st["podIP"], at("status.podIP"))
	for i, c := range r.listAt(st["conditions"], at("status.conditions")) {
		w := where{list: "status.conditions", i: i}
		m := r.mapAt(c, w)
		p.Status.Conditions = append(p.Status.Conditions, podCondition{
			Type:   r.strAt(m["type"], w.in("type")),
			Status: r.strAt(m["status"], w.in("status")),
		})
	}
}
