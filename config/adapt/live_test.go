package adapt

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kvgate/kvgate/config"
	"gopkg.in/yaml.v3"
)

// objects decodes a multi-document YAML string into the maps client-go's
// dynamic client hands kvgate run --kubernetes.
func objects(t *testing.T, src string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader([]byte(src)))
	var out []map[string]any
	for range 100 {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	t.Fatal("too many documents")
	return nil
}

const liveGateway = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ai}
spec:
  gatewayClassName: kvgate
  listeners:
  - {name: http, port: 8080, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
  - name: https
    port: 8443
    protocol: HTTPS
    tls: {certificateRefs: [{name: gw-cert}]}
`

// webRoute is an HTTPRoute sending /web to Service web port 80 (the tests
// that use it define the Service and, where needed, its EndpointSlices).
const webRoute = `
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: ai}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /web}}]
    backendRefs: [{name: web, port: 80}]
`

const livePool = `
---
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: vllm, namespace: ai}
spec:
  selector: {matchLabels: {app: vllm}}
  targetPorts: [{number: 8000}, {number: 8001}]
  endpointPickerRef: {name: epp, port: {number: 9002}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: chat, namespace: ai}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{group: inference.networking.k8s.io, kind: InferencePool, name: vllm}]
`

func pod(name, ip, ready string, deleting bool) string {
	del := ""
	if deleting {
		del = ", deletionTimestamp: '2026-01-01T00:00:00Z'"
	}
	return `
---
apiVersion: v1
kind: Pod
metadata: {name: ` + name + `, namespace: ai, labels: {app: vllm}` + del + `}
status:
  podIP: ` + ip + `
  conditions: [{type: Ready, status: "` + ready + `"}]
`
}

func poolByName(c *config.Config, name string) *config.Pool {
	for i := range c.Pools {
		if c.Pools[i].Name == name {
			return &c.Pools[i]
		}
	}
	return nil
}

func TestFromObjectsLivePodsAndListeners(t *testing.T) {
	in := liveGateway + livePool +
		pod("a", "10.1.0.1", "True", false) +
		pod("b", "10.1.0.2", "False", false) +
		pod("c", "10.1.0.3", "True", true) + // terminating
		pod("d", "10.1.0.4", "True", false)
	r, err := FromObjects(objects(t, in), "cluster", Options{Live: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.YAML != nil {
		t.Errorf("Live printed YAML")
	}
	if r.Config.Source != "cluster" {
		t.Errorf("Source = %q", r.Config.Source)
	}
	p := poolByName(r.Config, "vllm")
	if p == nil || !p.Discovered {
		t.Fatalf("pool vllm = %+v, want a Discovered pool", p)
	}
	want := []string{"10.1.0.1:8000", "10.1.0.1:8001", "10.1.0.4:8000", "10.1.0.4:8001"}
	if !slices.Equal(p.Endpoints, want) {
		t.Errorf("endpoints = %v, want %v (ready, not terminating; one per target port)", p.Endpoints, want)
	}
	// The HTTPS listener has no certificate: ignored, with a warning.
	if len(r.Config.Listeners) != 1 || r.Config.Listeners[0].Name != "gw-http" {
		t.Errorf("listeners = %+v, want gw-http only", r.Config.Listeners)
	}
	if !hasWarning(r.Warnings, "Secret ai/gw-cert is missing") {
		t.Errorf("no warning about the missing Secret: %v", r.Warnings)
	}
	// With the certificate the HTTPS listener is served from its files.
	r, err = FromObjects(objects(t, in), "cluster", Options{Live: true, Certs: map[string]CertFiles{"ai/gw-cert": {Cert: "/c", Key: "/k"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Config.Listeners) != 2 || r.Config.Listeners[1].TLS == nil || r.Config.Listeners[1].TLS.CertFile != "/c" {
		t.Errorf("listeners = %+v, want gw-https on /c", r.Config.Listeners)
	}
}

func TestFromObjectsLiveEmptyPools(t *testing.T) {
	in := liveGateway + livePool + pod("b", "10.1.0.2", "False", false) + `
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: ai}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
` + webRoute
	r, err := FromObjects(objects(t, in), "cluster", Options{Live: true})
	if err != nil {
		t.Fatalf("a pool with no ready endpoint must not be an error in Live mode: %v", err)
	}
	for _, name := range []string{"vllm", "web-80"} {
		p := poolByName(r.Config, name)
		if p == nil || !p.Discovered || len(p.Endpoints) != 0 || p.DNS != "" {
			t.Errorf("pool %s = %+v, want Discovered with no endpoint and no dns", name, p)
		}
	}
	// The same files without Live: the InferencePool is an error.
	if _, err := FromObjects(objects(t, in), "files", Options{}); err == nil || !strings.Contains(err.Error(), "no endpoints for pool vllm") {
		t.Errorf("files: err = %v, want no endpoints for pool vllm", err)
	}
}

func TestFromObjectsLiveReferenceGrant(t *testing.T) {
	in := liveGateway + `
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: other}
spec:
  ports: [{port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: other, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{port: 80}]
endpoints:
- {addresses: [10.2.0.1], conditions: {ready: true}}
- {addresses: [10.2.0.2], conditions: {ready: false, serving: true}}
- {addresses: [10.2.0.3], conditions: {ready: true, terminating: true}}
- {addresses: [10.2.0.4]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: ai}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: web, namespace: other, port: 80}]
`
	r, err := FromObjects(objects(t, in), "cluster", Options{Live: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Config.Routes) != 0 || !hasWarning(r.Warnings, "no ReferenceGrant in namespace other lets HTTPRoute from namespace ai") {
		t.Errorf("without a grant: routes %+v, warnings %v", r.Config.Routes, r.Warnings)
	}
	grant := `
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: allow-ai, namespace: other}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: ai}]
  to: [{group: "", kind: Service}]
`
	r, err = FromObjects(objects(t, in+grant), "cluster", Options{Live: true})
	if err != nil {
		t.Fatal(err)
	}
	p := poolByName(r.Config, "web-80")
	want := []string{"10.2.0.1:80", "10.2.0.4:80"}
	if p == nil || !slices.Equal(p.Endpoints, want) {
		t.Errorf("pool web-80 = %+v, want endpoints %v (ready, not terminating)", p, want)
	}
}

func TestParsePodsGiveInferencePoolEndpoints(t *testing.T) {
	in := liveGateway + livePool + pod("a", "10.1.0.1", "True", false) + pod("b", "10.1.0.2", "False", false)
	r, err := Parse([]byte(in), "pods.yaml", Options{Certs: map[string]CertFiles{"gw-cert": {Cert: "c", Key: "k"}}})
	if err != nil {
		t.Fatal(err)
	}
	p := poolByName(r.Config, "vllm")
	if want := []string{"10.1.0.1:8000", "10.1.0.1:8001"}; p == nil || !slices.Equal(p.Endpoints, want) || p.Discovered {
		t.Errorf("pool vllm = %+v, want static endpoints %v", p, want)
	}
}

func hasWarning(ws []Warning, sub string) bool {
	return slices.ContainsFunc(ws, func(w Warning) bool { return strings.Contains(w.String(), sub) })
}

// objectNode gives what (*yaml.Node).Encode gives, without the round trip
// through YAML text.
func TestObjectNodeMatchesEncode(t *testing.T) {
	obj := map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "s", "labels": map[string]any{"a": "true", "b": "8000"}},
		"spec": map[string]any{
			"ports":     []any{map[string]any{"port": int64(80), "targetPort": "http"}, map[string]any{"port": float64(81), "targetPort": int64(8001)}},
			"weight":    1.5,
			"flag":      true,
			"nothing":   nil,
			"empty":     map[string]any{},
			"emptyList": []any{},
		},
	}
	got, err := objectNode(obj, 0)
	if err != nil {
		t.Fatal(err)
	}
	var want yaml.Node
	if err := want.Encode(obj); err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := got.Decode(&a); err != nil {
		t.Fatal(err)
	}
	if err := want.Decode(&b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("objectNode decodes to\n%v\nEncode to\n%v", a, b)
	}
	deep := map[string]any{}
	for i, m := 0, deep; i < 200; i++ {
		next := map[string]any{}
		m["x"] = next
		m = next
	}
	if _, err := objectNode(deep, 0); err == nil {
		t.Errorf("no error for an object 200 levels deep")
	}
}
