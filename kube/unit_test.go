package kube

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/config/adapt"
)

func TestEndpointChanges(t *testing.T) {
	base := func() *config.Config {
		return &config.Config{
			Routes: []config.Route{{Name: "r", Backends: []config.Backend{{Pool: "a"}}}},
			Pools: []config.Pool{
				{Name: "a", Endpoints: []string{"10.0.0.1:80"}, Discovered: true},
				{Name: "b", Endpoints: []string{"10.0.0.2:80"}, Discovered: true},
			},
		}
	}
	same := base()
	if pools, ok := endpointChanges(base(), same); !ok || len(pools) != 0 {
		t.Errorf("equal configs: %v %v", pools, ok)
	}
	eps := base()
	eps.Pools[1].Endpoints = []string{"10.0.0.2:80", "10.0.0.3:80"}
	if pools, ok := endpointChanges(base(), eps); !ok || !slices.Equal(pools, []string{"b"}) {
		t.Errorf("endpoints of b: %v %v", pools, ok)
	}
	routes := base()
	routes.Routes[0].Backends[0].Pool = "b"
	if _, ok := endpointChanges(base(), routes); ok {
		t.Errorf("a route change counted as endpoints only")
	}
	proto := base()
	proto.Pools[0].Protocol = "h2c"
	if _, ok := endpointChanges(base(), proto); ok {
		t.Errorf("a pool protocol change counted as endpoints only")
	}
	more := base()
	more.Pools = append(more.Pools, config.Pool{Name: "c", Discovered: true})
	if _, ok := endpointChanges(base(), more); ok {
		t.Errorf("a new pool counted as endpoints only")
	}
}

func TestTrimKeepsWhatTheTranslationReads(t *testing.T) {
	pod := map[string]any{
		"metadata": map[string]any{
			"name": "p", "namespace": "ns", "uid": "u", "resourceVersion": "7", "labels": map[string]any{"app": "vllm"},
			"annotations": map[string]any{"big": "x"}, "managedFields": []any{map[string]any{}}, "ownerReferences": []any{},
		},
		"spec": map[string]any{"containers": []any{}},
		"status": map[string]any{
			"podIP": "10.1.0.1", "hostIP": "192.168.0.1", "phase": "Running",
			"conditions": []any{
				map[string]any{"type": "PodScheduled", "status": "True"},
				map[string]any{"type": "Ready", "status": "True", "lastTransitionTime": "t"},
			},
		},
	}
	spec := podSpec
	trimObject(pod, "v1", &spec)
	want := map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "p", "namespace": "ns", "uid": "u", "resourceVersion": "7", "labels": map[string]any{"app": "vllm"}},
		"status":   map[string]any{"podIP": "10.1.0.1", "conditions": []any{map[string]any{"type": "Ready", "status": "True"}}},
	}
	a, b := &unstructured.Unstructured{Object: pod}, &unstructured.Unstructured{Object: want}
	if !sameContent(a, b, false) || a.GetResourceVersion() != "7" {
		t.Errorf("trimmed pod = %v\nwant %v", pod, want)
	}
	b.SetResourceVersion("8")
	if !sameContent(a, b, false) {
		t.Errorf("objects differing only in resourceVersion are not the same content")
	}
	b.SetLabels(map[string]string{"app": "other"})
	if sameContent(a, b, false) {
		t.Errorf("a label change is the same content")
	}
}

func TestChoosingObjects(t *testing.T) {
	route := map[string]any{
		"metadata": map[string]any{"name": "r", "namespace": "ai"},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"name": "other-gw"}, map[string]any{"name": "gw", "namespace": "infra"}},
			"rules": []any{map[string]any{
				"filters": []any{map[string]any{"type": "RequestMirror", "requestMirror": map[string]any{"backendRef": map[string]any{"name": "shadow", "port": int64(80)}}}},
				"backendRefs": []any{
					map[string]any{"name": "svc", "port": int64(80)},
					map[string]any{"group": groupInference, "kind": "InferencePool", "name": "pool", "namespace": "models"},
					map[string]any{"group": groupInferX, "kind": "InferencePool", "name": "old"},
				},
			}},
		},
	}
	if !attached(route, map[string]bool{"infra/gw": true}) || attached(route, map[string]bool{"ai/gw": true}) {
		t.Errorf("attached: parentRef namespaces not followed")
	}
	rf := newRefs()
	rf.route(route)
	if !rf.services["ai/svc"] || !rf.services["ai/shadow"] || !rf.pools[kPool]["models/pool"] || !rf.pools[kPoolAlpha]["ai/old"] {
		t.Errorf("refs = %+v", rf)
	}
	v1 := map[string]any{"spec": map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": "vllm"}}}}
	alpha := map[string]any{"spec": map[string]any{"selector": map[string]any{"app": "vllm"}}}
	for _, p := range []map[string]any{v1, alpha} {
		if sel := poolSelector(p); sel["app"] != "vllm" || len(sel) != 1 {
			t.Errorf("poolSelector(%v) = %v", p, sel)
		}
	}
	if s, ok := scopeOf("ai", map[string]string{"b": "2", "a": "1"}); !ok || s.selector != "a=1,b=2" || s.namespace != "ai" {
		t.Errorf("scopeOf = %+v %v", s, ok)
	}
	if _, ok := scopeOf("ai", nil); ok {
		t.Errorf("an empty selector has a Pod scope (it selects no Pod)")
	}
	gw := map[string]any{
		"metadata": map[string]any{"name": "gw", "namespace": "infra"},
		"spec": map[string]any{"listeners": []any{
			map[string]any{"name": "http", "protocol": "HTTP"},
			map[string]any{"name": "https", "protocol": "HTTPS", "tls": map[string]any{"certificateRefs": []any{
				map[string]any{"name": "cert"}, map[string]any{"name": "shared", "namespace": "certs"},
				map[string]any{"name": "cm", "kind": "ConfigMap"},
			}}},
		}},
	}
	if got := listenerSecrets(gw); !slices.Equal(got, []string{"infra/cert", "certs/shared"}) {
		t.Errorf("listenerSecrets = %v", got)
	}
}

// The reasons a route's status gives come from adapt's warnings: this pins
// the messages they are read from (status.go) to what adapt says.
func TestRouteReasonsFromAdaptWarnings(t *testing.T) {
	gw := map[string]any{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
		"metadata": map[string]any{"name": "gw", "namespace": "ns"},
		"spec":     map[string]any{"gatewayClassName": "c", "listeners": []any{map[string]any{"name": "http", "port": int64(8080), "protocol": "HTTP"}}}}
	routeTo := func(name string, backend map[string]any, parent map[string]any) map[string]any {
		return map[string]any{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
			"metadata": map[string]any{"name": name, "namespace": "ns", "generation": int64(1)},
			"spec": map[string]any{"parentRefs": []any{parent},
				"rules": []any{map[string]any{"backendRefs": []any{backend}}}}}
	}
	gwRef := map[string]any{"name": "gw"}
	missing := routeTo("missing", map[string]any{"name": "nowhere", "port": int64(80)}, gwRef)
	other := routeTo("other", map[string]any{"name": "s", "namespace": "elsewhere", "port": int64(80)}, gwRef)
	kind := routeTo("kind", map[string]any{"group": "example.com", "kind": "Bucket", "name": "b"}, gwRef)
	section := routeTo("section", map[string]any{"name": "nowhere", "port": int64(80)}, map[string]any{"name": "gw", "sectionName": "nope"})
	res, err := adapt.FromObjects([]map[string]any{gw, missing, other, kind, section}, "test", adapt.Options{Live: true})
	if err != nil {
		t.Fatal(err)
	}
	byObj := map[string][]adapt.Warning{}
	for _, w := range res.Warnings {
		byObj[w.Resource.String()] = append(byObj[w.Resource.String()], w)
	}
	c := &Controller{}
	gateways := map[string]map[string]any{"ns/gw": gw}
	for _, tc := range []struct {
		route            map[string]any
		accepted, reason string
	}{
		{missing, reasonAccepted, reasonBackendNotFound},
		{other, reasonAccepted, reasonRefNotPermitted},
		{kind, reasonAccepted, reasonInvalidKind},
		{section, reasonNoMatchingParent, ""},
	} {
		name := str(tc.route, "metadata", "name")
		ps := c.routeParents(tc.route, gateways, byObj["HTTPRoute ns/"+name], nil)
		if len(ps) != 1 {
			t.Fatalf("%s: %d parents", name, len(ps))
		}
		if got := ps[0].cond[0].reason; got != tc.accepted {
			t.Errorf("%s: Accepted reason %s, want %s (warnings %v)", name, got, tc.accepted, byObj["HTTPRoute ns/"+name])
		}
		if got := ps[0].cond[1]; tc.reason != "" && (got.reason != tc.reason || got.status != "False") {
			t.Errorf("%s: ResolvedRefs %s/%s, want False/%s (warnings %v)", name, got.status, got.reason, tc.reason, byObj["HTTPRoute ns/"+name])
		}
	}
}

// Trimmed EndpointSlices share one conditions map per combination of
// ready, serving and terminating; a map with other keys is kept.
func TestTrimSharesEndpointConditions(t *testing.T) {
	slice := func(conds ...map[string]any) map[string]any {
		var eps []any
		for i, c := range conds {
			eps = append(eps, map[string]any{"addresses": []any{fmt.Sprintf("10.0.0.%d", i)}, "conditions": c, "nodeName": "n"})
		}
		return map[string]any{"metadata": map[string]any{"name": "s"}, "endpoints": eps}
	}
	cond := func(o map[string]any, i int) map[string]any {
		return o["endpoints"].([]any)[i].(map[string]any)["conditions"].(map[string]any)
	}
	same := func(a, b map[string]any) bool {
		return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
	}
	spec := kinds[slices.IndexFunc(kinds, func(k struct {
		key  string
		spec kindSpec
	}) bool {
		return k.key == kEndpointSlice
	})].spec
	a := slice(map[string]any{"ready": true, "serving": true, "terminating": false}, map[string]any{"ready": false})
	b := slice(map[string]any{"ready": true, "serving": true, "terminating": false}, map[string]any{"ready": false, "future": "x"})
	trimObject(a, "discovery.k8s.io/v1", &spec)
	trimObject(b, "discovery.k8s.io/v1", &spec)
	if !same(cond(a, 0), cond(b, 0)) {
		t.Errorf("equal conditions of two slices are not shared")
	}
	if same(cond(a, 0), cond(a, 1)) || !reflect.DeepEqual(cond(a, 1), map[string]any{"ready": false}) {
		t.Errorf("different conditions shared, or changed: %v", cond(a, 1))
	}
	if !reflect.DeepEqual(cond(b, 1), map[string]any{"ready": false, "future": "x"}) {
		t.Errorf("a conditions map with another key changed: %v", cond(b, 1))
	}
	if _, ok := a["endpoints"].([]any)[0].(map[string]any)["nodeName"]; ok {
		t.Errorf("nodeName kept")
	}
}
