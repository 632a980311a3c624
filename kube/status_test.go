package kube

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	classGVR = schema.GroupVersionResource{Group: groupGateway, Version: "v1", Resource: "gatewayclasses"}
	gwGVR    = schema.GroupVersionResource{Group: groupGateway, Version: "v1", Resource: "gateways"}
	routeGVR = schema.GroupVersionResource{Group: groupGateway, Version: "v1", Resource: "httproutes"}
	poolGVR  = schema.GroupVersionResource{Group: groupInference, Version: "v1", Resource: "inferencepools"}
)

// fetch reads one object (ns "" for cluster-scoped ones).
func fetch(t *testing.T, gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	t.Helper()
	res := env.dyn.Resource(gvr)
	var u *unstructured.Unstructured
	var err error
	if ns == "" {
		u, err = res.Get(context.Background(), name, getOpts)
	} else {
		u, err = res.Namespace(ns).Get(context.Background(), name, getOpts)
	}
	if err != nil {
		t.Fatalf("get %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
	return u
}

// condition finds a condition of type typ in conds.
func condition(conds []any, typ string) map[string]any {
	for _, c := range conds {
		if m := asMap(c); str(m, "type") == typ {
			return m
		}
	}
	return nil
}

// hasCond reports whether conds has typ with status and reason (reason ""
// is any) observed at generation gen.
func hasCond(conds []any, typ, status, reason string, gen int64) bool {
	c := condition(conds, typ)
	return c != nil && str(c, "status") == status && (reason == "" || str(c, "reason") == reason) &&
		c["observedGeneration"] == gen && str(c, "lastTransitionTime") != ""
}

// ourParent is the status.parents entry written by controller ctrl.
func ourParent(o map[string]any, ctrl string) map[string]any {
	for _, p := range list(o, "status", "parents") {
		if m := asMap(p); str(m, "controllerName") == ctrl {
			return m
		}
	}
	return nil
}

func routeCond(t *testing.T, ns, name, ctrl, typ, status, reason string) bool {
	u := fetch(t, routeGVR, ns, name)
	p := ourParent(u.Object, ctrl)
	return p != nil && hasCond(list(p, "conditions"), typ, status, reason, u.GetGeneration())
}

// The statuses a Gateway API implementation writes appear, with
// observedGeneration equal to each object's generation; a route change
// moves observedGeneration and keeps lastTransitionTime; a missing backend
// is ResolvedRefs False/BackendNotFound; nothing is written when nothing
// changed.
func TestStatusConditions(t *testing.T) {
	ns := newNamespace(t)
	class, ctrl := gatewayClass(t)
	app := "vllm-" + ns
	apply(t, ns, gateway(class)+service("a", [2]string{env.ips[0], "ready"})+service("b", [2]string{env.ips[1], "ready"})+
		route("chat", "a")+route("lost", "nowhere")+fmt.Sprintf(`apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: vllm}
spec:
  selector: {matchLabels: {app: %s}}
  targetPorts: [{number: 8000}]
  endpointPickerRef: {name: epp, port: {number: 9002}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: llm}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /v1}}]
    backendRefs: [{group: inference.networking.k8s.io, kind: InferencePool, name: vllm}]
`, app))
	k := start(t, ctrl, nil)
	t0 := time.Now()

	eventually(t, 10*time.Second, "GatewayClass Accepted", func() bool {
		u := fetch(t, classGVR, "", class)
		return hasCond(list(u.Object, "status", "conditions"), condAccepted, "True", reasonAccepted, u.GetGeneration())
	})
	var gwStatus any
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Gateway status: %v", gwStatus)
		}
	})
	eventually(t, 10*time.Second, "Gateway Accepted and Programmed with addresses and listeners", func() bool {
		u := fetch(t, gwGVR, ns, "gw")
		gwStatus = u.Object["status"]
		o, gen := u.Object, u.GetGeneration()
		ls := list(o, "status", "listeners")
		if len(ls) != 1 {
			return false
		}
		l := asMap(ls[0])
		addrs := list(o, "status", "addresses")
		return hasCond(list(o, "status", "conditions"), condAccepted, "True", reasonAccepted, gen) &&
			hasCond(list(o, "status", "conditions"), condProgrammed, "True", reasonProgrammed, gen) &&
			len(addrs) == 1 && str(asMap(addrs[0]), "value") == "127.0.0.1" && str(asMap(addrs[0]), "type") == "IPAddress" &&
			str(l, "name") == "http" && l["attachedRoutes"] == int64(3) &&
			hasCond(list(l, "conditions"), condAccepted, "True", "", gen) &&
			hasCond(list(l, "conditions"), condProgrammed, "True", "", gen) &&
			hasCond(list(l, "conditions"), condResolvedRefs, "True", "", gen)
	})
	eventually(t, 5*time.Second, "HTTPRoute chat Accepted and ResolvedRefs", func() bool {
		u := fetch(t, routeGVR, ns, "chat")
		p := ourParent(u.Object, ctrl)
		return p != nil && str(asMap(p["parentRef"]), "name") == "gw" &&
			routeCond(t, ns, "chat", ctrl, condAccepted, "True", reasonAccepted) &&
			routeCond(t, ns, "chat", ctrl, condResolvedRefs, "True", reasonResolvedRefs)
	})
	eventually(t, 5*time.Second, "HTTPRoute lost: ResolvedRefs False/BackendNotFound", func() bool {
		return routeCond(t, ns, "lost", ctrl, condResolvedRefs, "False", reasonBackendNotFound)
	})
	msg := str(condition(list(ourParent(fetch(t, routeGVR, ns, "lost").Object, ctrl), "conditions"), condResolvedRefs), "message")
	if !strings.Contains(msg, "nowhere") {
		t.Errorf("the BackendNotFound message does not name the Service: %q", msg)
	}
	eventually(t, 5*time.Second, "InferencePool parents", func() bool {
		u := fetch(t, poolGVR, ns, "vllm")
		p := ourParent(u.Object, ctrl)
		return p != nil && str(asMap(p["parentRef"]), "name") == "gw" &&
			hasCond(list(p, "conditions"), condAccepted, "True", reasonAccepted, u.GetGeneration()) &&
			hasCond(list(p, "conditions"), condResolvedRefs, "True", reasonResolvedRefs, u.GetGeneration())
	})
	t.Logf("every status written %s after start", time.Since(t0).Round(time.Millisecond))

	// Stable: nothing more is written.
	writes := k.c.statusWrites.Load()
	time.Sleep(time.Second)
	if got := k.c.statusWrites.Load(); got != writes {
		t.Errorf("%d status writes while nothing changed", got-writes)
	}

	// A spec change bumps generation; observedGeneration follows, and
	// lastTransitionTime stays (the condition's status did not change).
	before := fetch(t, routeGVR, ns, "chat")
	ltt := str(condition(list(ourParent(before.Object, ctrl), "conditions"), condAccepted), "lastTransitionTime")
	time.Sleep(1100 * time.Millisecond) // lastTransitionTime has seconds
	apply(t, ns, route("chat", "b"))
	eventually(t, 5*time.Second, "observedGeneration follows the route's generation", func() bool {
		u := fetch(t, routeGVR, ns, "chat")
		return u.GetGeneration() > before.GetGeneration() && routeCond(t, ns, "chat", ctrl, condAccepted, "True", reasonAccepted)
	})
	after := fetch(t, routeGVR, ns, "chat")
	if got := str(condition(list(ourParent(after.Object, ctrl), "conditions"), condAccepted), "lastTransitionTime"); got != ltt {
		t.Errorf("lastTransitionTime changed from %s to %s though Accepted stayed True", ltt, got)
	}
	if !strings.Contains(k.logs.String(), "HTTPRoute "+ns+"/lost") {
		t.Errorf("the missing backend is not logged naming HTTPRoute %s/lost", ns)
	}
}

// With two replicas only the Lease holder writes status; when it stops
// (its Lease released) the other takes over within a few seconds.
func TestStatusLeaderElection(t *testing.T) {
	ns := newNamespace(t)
	class, ctrl := gatewayClass(t)
	apply(t, ns, gateway(class)+service("a", [2]string{env.ips[0], "ready"})+service("b", [2]string{env.ips[1], "ready"})+route("chat", "a"))
	k1 := start(t, ctrl, nil)
	k2 := start(t, ctrl, nil)
	eventually(t, 10*time.Second, "status written", func() bool {
		return routeCond(t, ns, "chat", ctrl, condAccepted, "True", reasonAccepted)
	})
	leader, follower := k1, k2
	if k2.c.leading.Load() {
		leader, follower = k2, k1
	}
	if !leader.c.leading.Load() || follower.c.leading.Load() {
		t.Fatalf("want exactly one leader: %v %v", k1.c.leading.Load(), k2.c.leading.Load())
	}
	apply(t, ns, route("chat", "b"))
	gen := fetch(t, routeGVR, ns, "chat").GetGeneration()
	eventually(t, 5*time.Second, "the leader writes the new generation", func() bool {
		return routeCond(t, ns, "chat", ctrl, condAccepted, "True", reasonAccepted) && fetch(t, routeGVR, ns, "chat").GetGeneration() == gen
	})
	if leader.c.statusWrites.Load() == 0 || follower.c.statusWrites.Load() != 0 {
		t.Fatalf("status writes: leader %d, follower %d; want the leader's only", leader.c.statusWrites.Load(), follower.c.statusWrites.Load())
	}

	leader.stop()
	took := eventually(t, 5*time.Second, "the other replica takes the Lease", func() bool { return follower.c.leading.Load() })
	t.Logf("the second replica leads %s after the first stopped", took.Round(time.Millisecond))
	apply(t, ns, route("chat", "a"))
	took = eventually(t, 5*time.Second, "the new leader writes", func() bool {
		u := fetch(t, routeGVR, ns, "chat")
		p := ourParent(u.Object, ctrl)
		return p != nil && hasCond(list(p, "conditions"), condAccepted, "True", reasonAccepted, u.GetGeneration()) && u.GetGeneration() > gen
	})
	t.Logf("the new leader wrote the route's new generation %s after the change", took.Round(time.Millisecond))
	if follower.c.statusWrites.Load() == 0 {
		t.Errorf("the new leader counted no write")
	}
}

// listenerStatus is the status.listeners entry of a Gateway listener.
func listenerStatus(o map[string]any, name string) map[string]any {
	for _, l := range list(o, "status", "listeners") {
		if m := asMap(l); str(m, "name") == name {
			return m
		}
	}
	return nil
}

// attachedRoutes counts per Gateway API rules: a route of another
// namespace attaches only where allowedRoutes admits it, and only to
// listeners whose hostname its hostnames intersect. A listener added or
// changed after start is not served until a restart, and its status says
// so (Programmed False, Pending, a message naming the restart), as does
// the log; the Gateway stays Programmed by its other listeners.
func TestListenerStatusAttachedRoutesAndRestart(t *testing.T) {
	ns, other := newNamespace(t), newNamespace(t)
	class, ctrl := gatewayClass(t)
	gw := func(extra string) string {
		return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: %s
  listeners:
  - {name: http, port: 8080, protocol: HTTP}
  - {name: a, port: 8081, protocol: HTTP, hostname: a.example.com, allowedRoutes: {namespaces: {from: All}}}
%s---
`, class, extra)
	}
	hostRoute := func(name, gwNS, host, svc string) string {
		return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: %s}
spec:
  parentRefs: [{name: gw, namespace: %s}]
  hostnames: [%s]
  rules: [{backendRefs: [{name: %s, port: 80}]}]
---
`, name, gwNS, host, svc)
	}
	apply(t, ns, gw("")+service("s", [2]string{env.ips[0], "ready"})+hostRoute("b-host", ns, "b.example.com", "s"))
	apply(t, other, service("s", [2]string{env.ips[1], "ready"})+hostRoute("a-host", ns, "a.example.com", "s"))
	port, err := freePort() // its own address: listeners on one address share it
	if err != nil {
		t.Fatal(err)
	}
	k := start(t, ctrl, func(o *Options) { o.Adapt.Listen["gw-a"] = "127.0.0.1:" + port })

	var gwStatus any
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Gateway status: %v", gwStatus)
		}
	})
	attachedIs := func(o map[string]any, l string, n int64) bool {
		ls := listenerStatus(o, l)
		return ls != nil && ls["attachedRoutes"] == n
	}
	eventually(t, 10*time.Second, "attachedRoutes by namespace and hostname", func() bool {
		u := fetch(t, gwGVR, ns, "gw")
		gwStatus = u.Object["status"]
		// http: b-host (same namespace, any hostname); not a-host (another
		// namespace). a: a-host (All namespaces); not b-host (hostnames differ).
		return attachedIs(u.Object, "http", 1) && attachedIs(u.Object, "a", 1) &&
			hasCond(list(listenerStatus(u.Object, "a"), "conditions"), condProgrammed, "True", reasonProgrammed, u.GetGeneration())
	})

	// A listener added after start, and one changed (HTTP to HTTPS).
	apply(t, ns, tlsSecret(t, "cert", "c")+gw(`  - {name: extra, port: 18090, protocol: HTTP}
`))
	eventually(t, 10*time.Second, "the added listener says it needs a restart", func() bool {
		u := fetch(t, gwGVR, ns, "gw")
		gwStatus = u.Object["status"]
		gen := u.GetGeneration()
		extra := condition(list(listenerStatus(u.Object, "extra"), "conditions"), condProgrammed)
		return extra != nil && str(extra, "status") == "False" && str(extra, "reason") == reasonPending &&
			strings.Contains(str(extra, "message"), "restart kvgate") && strings.Contains(str(extra, "message"), ":18090") &&
			extra["observedGeneration"] == gen && attachedIs(u.Object, "extra", 1) &&
			hasCond(list(u.Object, "status", "conditions"), condProgrammed, "True", reasonProgrammed, gen) &&
			hasCond(list(listenerStatus(u.Object, "http"), "conditions"), condProgrammed, "True", reasonProgrammed, gen)
	})
	if k.p.Listener("gw-extra") != nil {
		t.Errorf("the added listener is served without a restart")
	}
	apply(t, ns, strings.Replace(gw(`  - {name: extra, port: 18090, protocol: HTTP}
`), "{name: a, port: 8081, protocol: HTTP, hostname: a.example.com,",
		"{name: a, port: 8081, protocol: HTTPS, hostname: a.example.com, tls: {certificateRefs: [{name: cert}]},", 1))
	eventually(t, 10*time.Second, "the changed listener says it is served as it was", func() bool {
		u := fetch(t, gwGVR, ns, "gw")
		gwStatus = u.Object["status"]
		a := condition(list(listenerStatus(u.Object, "a"), "conditions"), condProgrammed)
		return a != nil && str(a, "status") == "False" && str(a, "reason") == reasonPending &&
			strings.Contains(str(a, "message"), "as HTTP, not HTTPS") && strings.Contains(str(a, "message"), "restart kvgate")
	})
	if !strings.Contains(k.logs.String(), "the Gateway listeners changed; restart kvgate") {
		t.Errorf("the listener change is not logged")
	}
}
