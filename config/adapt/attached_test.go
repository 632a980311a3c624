package adapt

import (
	"maps"
	"testing"
)

// AttachedRoutes counts routes per Gateway listener as Gateway API's
// attachedRoutes does: parentRef (sectionName, port), allowedRoutes
// (namespaces, kinds) and hostname intersection decide; the validity of
// the listener (a missing certificate) or of the route does not.
func TestAttachedRoutes(t *testing.T) {
	in := `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: kvgate
  listeners:
  - {name: http, port: 8080, protocol: HTTP}
  - {name: a, port: 8081, protocol: HTTP, hostname: a.example.com, allowedRoutes: {namespaces: {from: All}}}
  - {name: wild, port: 8082, protocol: HTTP, hostname: "*.example.com", allowedRoutes: {namespaces: {from: All}}}
  - {name: grpc-only, port: 8083, protocol: HTTP, allowedRoutes: {kinds: [{kind: GRPCRoute}]}}
  - {name: tcp, port: 9000, protocol: TCP}
  - name: https-no-cert
    port: 8443
    protocol: HTTPS
    tls: {certificateRefs: [{name: missing}]}
---
apiVersion: v1
kind: Service
metadata: {name: s, namespace: infra}
spec:
  ports: [{port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: any-host, namespace: infra}
spec:
  parentRefs: [{name: gw}, {name: gw, sectionName: http}]
  rules: [{backendRefs: [{name: s, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: b-host, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  hostnames: [b.example.com]
  rules: [{backendRefs: [{name: s, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: other-ns, namespace: apps}
spec:
  parentRefs: [{name: gw, namespace: infra}]
  hostnames: [a.example.com]
  rules: [{backendRefs: [{name: missing, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: wrong-port, namespace: infra}
spec:
  parentRefs: [{name: gw, sectionName: a, port: 9999}]
  rules: [{backendRefs: [{name: s, port: 80}]}]
`
	r, err := FromObjects(objects(t, in), "cluster", Options{Live: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		// any-host (its two parentRefs count once), b-host (no hostname on the listener)
		"infra/gw/http": 2,
		// any-host, other-ns (All namespaces; a dropped backend does not
		// matter); b-host does not intersect
		"infra/gw/a": 2,
		// b-host and other-ns intersect *.example.com; any-host too (no hostnames)
		"infra/gw/wild": 3,
		// not served (no certificate) but attached: any-host and b-host
		"infra/gw/https-no-cert": 2,
	}
	if !maps.Equal(r.AttachedRoutes, want) {
		t.Errorf("AttachedRoutes = %v\nwant %v", r.AttachedRoutes, want)
	}
}
