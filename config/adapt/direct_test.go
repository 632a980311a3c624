package adapt

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// nodeDoc is o as FromObjects read every kind before direct.go: through
// a YAML node.
func nodeDoc(t *testing.T, o map[string]any) doc {
	t.Helper()
	n, err := objectNode(o, 0)
	if err != nil {
		t.Fatal(err)
	}
	budget := 10
	docs, warns := collect(n, "", nil, nil, 0, &budget)
	if len(docs) != 1 {
		t.Fatalf("collect: %v", warns)
	}
	return docs[0]
}

// EndpointSlices and Pods read straight from their decoded form come out as
// the YAML decoder reads them: the same values, the same keys warned about,
// an error for the same wrong types.
func TestDirectMatchesYAML(t *testing.T) {
	slice := func(tweak func(o map[string]any)) map[string]any {
		o := map[string]any{
			"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
			"metadata": map[string]any{"name": "s-1", "namespace": "ai", "labels": map[string]any{"kubernetes.io/service-name": "s"},
				"resourceVersion": "12", "uid": "u"},
			"addressType": "IPv4",
			"endpoints": []any{
				map[string]any{"addresses": []any{"10.0.0.1"}, "conditions": map[string]any{"ready": true, "serving": true, "terminating": false}},
				map[string]any{"addresses": []any{"10.0.0.2", "10.0.0.3"}, "conditions": map[string]any{"ready": false},
					"nodeName": "n1", "zone": "z", "hostname": "h", "hints": map[string]any{"forZones": []any{map[string]any{"name": "z"}}},
					"targetRef": map[string]any{"kind": "Pod", "name": "p"}},
				map[string]any{"addresses": []any{"10.0.0.4"}},
			},
			"ports": []any{map[string]any{"name": "http", "port": int64(8000), "protocol": "TCP", "appProtocol": "http"}, map[string]any{"port": float64(9000)}},
		}
		if tweak != nil {
			tweak(o)
		}
		return o
	}
	ep := func(o map[string]any, i int) map[string]any { return o["endpoints"].([]any)[i].(map[string]any) }
	pod := func(tweak func(o map[string]any)) map[string]any {
		o := map[string]any{
			"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": "p", "namespace": "ai", "labels": map[string]any{"app": "vllm", "rank": int64(2)},
				"deletionTimestamp": "2026-01-01T00:00:00Z"},
			"spec": map[string]any{"nodeName": "n1"},
			"status": map[string]any{"podIP": "10.1.0.1", "phase": "Running",
				"conditions": []any{map[string]any{"type": "Ready", "status": "True", "lastTransitionTime": "x"}}},
		}
		if tweak != nil {
			tweak(o)
		}
		return o
	}
	cases := []struct {
		name    string
		obj     map[string]any
		wantErr bool
	}{
		{"slice", slice(nil), false},
		{"slice with int ports", slice(func(o map[string]any) { o["ports"] = []any{map[string]any{"port": 8000}} }), false},
		{"slice with null and empty values", slice(func(o map[string]any) {
			o["endpoints"] = []any{map[string]any{"addresses": nil, "conditions": nil}, map[string]any{}}
			o["ports"] = nil
		}), false},
		{"slice with unknown keys", slice(func(o map[string]any) {
			o["zzz"], o["aaa"] = 1, "x"
			ep(o, 0)["deprecatedTopology"] = map[string]any{"a": "b"}
			ep(o, 2)["conditions"] = map[string]any{"ready": true, "future": true}
			o["ports"].([]any)[0].(map[string]any)["extra"] = 1
		}), false},
		{"slice address not a list", slice(func(o map[string]any) { ep(o, 0)["addresses"] = "10.0.0.1" }), true},
		{"slice ready a string", slice(func(o map[string]any) { ep(o, 0)["conditions"] = map[string]any{"ready": "true"} }), true},
		{"slice port a string", slice(func(o map[string]any) { o["ports"] = []any{map[string]any{"port": "http"}} }), true},
		{"slice port a fraction", slice(func(o map[string]any) { o["ports"] = []any{map[string]any{"port": 80.5}} }), false},
		{"slice ready yes", slice(func(o map[string]any) { ep(o, 0)["conditions"] = map[string]any{"ready": "no", "serving": "on"} }), false},
		{"slice endpoints a mapping", slice(func(o map[string]any) { o["endpoints"] = map[string]any{} }), true},
		{"pod", pod(nil), false},
		{"pod not terminating, no conditions", pod(func(o map[string]any) {
			delete(o["metadata"].(map[string]any), "deletionTimestamp")
			delete(o["status"].(map[string]any), "conditions")
		}), false},
		{"pod without status", pod(func(o map[string]any) { delete(o, "status") }), false},
		{"pod conditions a mapping", pod(func(o map[string]any) { o["status"].(map[string]any)["conditions"] = map[string]any{} }), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			direct, ok := directDoc(tc.obj)
			if !ok {
				t.Fatal("not read directly")
			}
			viaNode := nodeDoc(t, tc.obj)
			if direct.res.Kind != viaNode.res.Kind || direct.res.Name != viaNode.res.Name || direct.res.Namespace != viaNode.res.Namespace || direct.apiVersion != viaNode.apiVersion {
				t.Fatalf("resource %+v %s, via a node %+v %s", direct.res, direct.apiVersion, viaNode.res, viaNode.apiVersion)
			}
			var got, want any
			var gotUnknown, wantUnknown []string
			var gotErr, wantErr error
			switch direct.res.Kind {
			case "EndpointSlice":
				var s1, s2 sliceDoc
				u1, err1 := readMapped(direct, &s1)
				u2, err2 := decodeInto(viaNode, &s2)
				got, want, gotErr, wantErr = s1, s2, err1, err2
				for _, u := range u1 {
					gotUnknown = append(gotUnknown, u.path)
				}
				for _, u := range u2 {
					wantUnknown = append(wantUnknown, u.path)
				}
			case "Pod":
				var p1, p2 podDoc
				gotErr, wantErr = decodePod(direct, &p1), decodePod(viaNode, &p2)
				got, want = p1, p2
			}
			if (gotErr != nil) != tc.wantErr || (wantErr != nil) != tc.wantErr {
				t.Fatalf("errors: direct %v, via a node %v; want an error: %v", gotErr, wantErr, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("direct:\n%s\nvia a node:\n%s", dump(got), dump(want))
			}
			slices.Sort(gotUnknown)
			slices.Sort(wantUnknown)
			if !slices.Equal(gotUnknown, wantUnknown) {
				t.Errorf("unknown keys: direct %v, via a node %v", gotUnknown, wantUnknown)
			}
		})
	}
}

func dump(v any) string { return fmt.Sprintf("%+v", v) }

// A whole translation of objects read directly equals the one from the
// same objects as a manifest file.
func TestFromObjectsMatchesParse(t *testing.T) {
	in := liveGateway + livePool +
		pod("a", "10.1.0.1", "True", false) + pod("b", "10.1.0.2", "False", false) + pod("c", "10.1.0.3", "True", true) + `
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: ai}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: ai, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [10.2.0.1], conditions: {ready: true}, nodeName: n1, unknownKey: 1}
- {addresses: [10.2.0.2], conditions: {ready: false, serving: true}}
- {addresses: [10.2.0.3, 10.2.0.5], conditions: {ready: true, terminating: false}}
` + webRoute
	opts := Options{Live: true, Certs: map[string]CertFiles{"ai/gw-cert": {Cert: "/c", Key: "/k"}}}
	direct, err := FromObjects(objects(t, in), "x", opts)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := Parse([]byte(in), "x", opts)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(direct.Config, parsed.Config) {
		t.Errorf("config from objects:\n%+v\nfrom the file:\n%+v", direct.Config, parsed.Config)
	}
	strip := func(ws []Warning) []string {
		var out []string
		for _, w := range ws {
			w.Resource.File, w.Resource.Line, w.Line = "", 0, 0
			out = append(out, w.String())
		}
		return out
	}
	g, w := strip(direct.Warnings), strip(parsed.Warnings)
	slices.Sort(g) // the file's are in line order, the objects' in the order found
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("warnings from objects:\n%q\nfrom the file:\n%q", g, w)
	}
	if p := poolByName(direct.Config, "web-80"); p == nil || !slices.Equal(p.Endpoints, []string{"10.2.0.1:8080", "10.2.0.3:8080", "10.2.0.5:8080"}) {
		t.Errorf("pool web-80 = %+v", p)
	}
}

// BenchmarkFromObjectsEndpoints is one translation of a Service with
// 10,000 endpoints in ten EndpointSlices, as kvgate run --kubernetes makes
// on every change: its allocations are garbage the next collection frees.
func BenchmarkFromObjectsEndpoints(b *testing.B) {
	objs := []map[string]any{
		{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": map[string]any{"name": "gw", "namespace": "ai"},
			"spec": map[string]any{"gatewayClassName": "kvgate", "listeners": []any{map[string]any{"name": "http", "port": int64(8080), "protocol": "HTTP"}}}},
		{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": map[string]any{"name": "r", "namespace": "ai"},
			"spec": map[string]any{"parentRefs": []any{map[string]any{"name": "gw"}}, "rules": []any{map[string]any{"backendRefs": []any{map[string]any{"name": "s", "port": int64(80)}}}}}},
		{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": "s", "namespace": "ai"},
			"spec": map[string]any{"selector": map[string]any{"app": "s"}, "ports": []any{map[string]any{"name": "http", "port": int64(80), "targetPort": int64(8000)}}}},
	}
	for k := range 10 {
		var eps []any
		for i := k * 1000; i < (k+1)*1000; i++ {
			eps = append(eps, map[string]any{"addresses": []any{fmt.Sprintf("10.214.%d.%d", i/250, i%250+1)},
				"conditions": map[string]any{"ready": true, "serving": true, "terminating": false}})
		}
		objs = append(objs, map[string]any{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
			"metadata":    map[string]any{"name": fmt.Sprintf("s-%d", k), "namespace": "ai", "labels": map[string]any{"kubernetes.io/service-name": "s"}},
			"addressType": "IPv4", "endpoints": eps,
			"ports": []any{map[string]any{"name": "http", "port": int64(8000), "protocol": "TCP"}}})
	}
	b.ReportAllocs()
	for b.Loop() {
		r, err := FromObjects(objs, "bench", Options{Live: true})
		if err != nil {
			b.Fatal(err)
		}
		if n := len(r.Config.Pools[0].Endpoints); n != 10000 {
			b.Fatalf("%d endpoints", n)
		}
	}
}
