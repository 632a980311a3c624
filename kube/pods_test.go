package kube

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// cachedPods are namespace/name of every Pod in the controller's caches,
// and the scopes it watches.
func (k *kvgate) cachedPods() (pods, scopes []string) {
	k.c.mu.Lock()
	defer k.c.mu.Unlock()
	for _, in := range k.c.informers {
		if in.spec.kind != "Pod" {
			continue
		}
		if in.scope != nil {
			scopes = append(scopes, in.scope.String())
		}
		for _, it := range in.inf.GetStore().List() {
			pods = append(pods, nsName(it.(*unstructured.Unstructured).Object))
		}
	}
	slices.Sort(pods)
	slices.Sort(scopes)
	return pods, scopes
}

func inferencePool(name, app string) string {
	return fmt.Sprintf(`apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: %s}
spec:
  selector: {matchLabels: {app: %s}}
  targetPorts: [{number: 8000}]
  endpointPickerRef: {name: epp, port: {number: 9002}}
---
`, name, app)
}

func poolRoute(pool string) string {
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: llm}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{group: inference.networking.k8s.io, kind: InferencePool, name: %s}]
---
`, pool)
}

// Pods are watched per InferencePool that a served route sends to, with
// its selector given to the API server: Pods of other namespaces, Pods the
// pool does not select and Pods of pools no route sends to are never in
// kvgate's cache. A route that stops sending to a pool stops its watch; a
// selector change watches the new Pods.
func TestPodsWatchedPerInferencePool(t *testing.T) {
	ns, other := newNamespace(t), newNamespace(t)
	class, ctrl := gatewayClass(t)
	a, b := "vllm-a-"+ns, "vllm-b-"+ns
	apply(t, ns, gateway(class)+inferencePool("pa", a)+inferencePool("unused", b)+poolRoute("pa"))
	pod(t, ns, "pa-1", a, env.ips[3], true)
	pod(t, ns, "pb-1", b, env.ips[4], true)        // selected by a pool no route sends to
	pod(t, ns, "web", "web-"+ns, env.ips[5], true) // selected by no pool
	pod(t, other, "pa-elsewhere", a, env.ips[6], true)
	k := start(t, ctrl, func(o *Options) { o.Debounce, o.MaxDelay = 50*time.Millisecond, 300*time.Millisecond })
	url := k.url("gw-http", "/v1/completions")

	if got := complete(t, url, "hello"); got != ep(env.ips[3], 8000) {
		t.Fatalf("served by %s, want pa-1 %s", got, ep(env.ips[3], 8000))
	}
	pods, scopes := k.cachedPods()
	if want := []string{ns + "/pa-1"}; !slices.Equal(pods, want) {
		t.Errorf("cached Pods = %v, want %v (only those of the routed pool)", pods, want)
	}
	if want := []string{ns + "/{app=" + a + "}"}; !slices.Equal(scopes, want) {
		t.Errorf("Pod watches = %v, want %v", scopes, want)
	}

	// The route moves to the other pool: its Pods are watched, the first
	// pool's no longer.
	apply(t, ns, poolRoute("unused"))
	eventually(t, 2*time.Second, "the route's new pool serves", func() bool { return complete(t, url, "x") == ep(env.ips[4], 8000) })
	eventually(t, time.Second, "the first pool's watch stops", func() bool {
		pods, _ := k.cachedPods()
		return slices.Equal(pods, []string{ns + "/pb-1"})
	})

	// The pool's selector changes: the Pods it now selects serve.
	apply(t, ns, inferencePool("unused", "web-"+ns))
	eventually(t, 2*time.Second, "the new selector's Pod serves", func() bool { return complete(t, url, "y") == ep(env.ips[5], 8000) })
	pods, scopes = k.cachedPods()
	if want := []string{ns + "/web"}; !slices.Equal(pods, want) {
		t.Errorf("cached Pods after the selector change = %v, want %v", pods, want)
	}
	if len(scopes) != 1 || !strings.Contains(scopes[0], "app=web-"+ns) {
		t.Errorf("Pod watches after the selector change = %v", scopes)
	}
	if k.c.Status() != nil {
		t.Errorf("status: %v", k.c.Status())
	}
}

const inferenceModelCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: inferencemodels.inference.networking.x-k8s.io}
spec:
  group: inference.networking.x-k8s.io
  names: {kind: InferenceModel, listKind: InferenceModelList, plural: inferencemodels, singular: inferencemodel}
  scope: Namespaced
  versions:
  - name: v1alpha2
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

// modelOf sends one completion for model and returns the model the
// backend was asked for.
func modelOf(t *testing.T, url, model string) string {
	t.Helper()
	return completion(t, url, model, "hi", "X-Model")
}

// An InferenceModel (the Inference Extension's v0 API, CRD of its own)
// follows the cluster: created, its target model rewrites the requests for
// its model name; deleted, they go through as asked.
func TestInferenceModelFollowsCluster(t *testing.T) {
	apply(t, "", inferenceModelCRD)
	t.Cleanup(func() {
		_ = env.dyn.Resource(crdGVR).Delete(context.Background(), "inferencemodels.inference.networking.x-k8s.io", deleteOpts)
	})
	if err := waitEstablished([]string{"inferencemodels.inference.networking.x-k8s.io"}); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t)
	class, ctrl := gatewayClass(t)
	app := "vllm-" + ns
	apply(t, ns, gateway(class)+inferencePool("vllm", app)+poolRoute("vllm"))
	pod(t, ns, "p1", app, env.ips[3], true)
	k := start(t, ctrl, func(o *Options) { o.Debounce, o.MaxDelay = 50*time.Millisecond, 300*time.Millisecond })
	url := k.url("gw-http", "/v1/completions")
	if got := modelOf(t, url, "chat"); got != "chat" {
		t.Fatalf("without an InferenceModel the backend was asked for %q, want chat", got)
	}
	model := `apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: chat}
spec:
  modelName: chat
  criticality: Critical
  poolRef: {name: vllm}
  targetModels: [{name: chat-v2, weight: 100}]
`
	apply(t, ns, model)
	eventually(t, 2*time.Second, "the InferenceModel's target model is asked for", func() bool { return modelOf(t, url, "chat") == "chat-v2" })
	if got := modelOf(t, url, "other"); got != "other" {
		t.Errorf("another model was asked for as %q", got)
	}
	remove(t, schema.GroupVersionResource{Group: groupInferX, Version: "v1alpha2", Resource: "inferencemodels"}, ns, "chat")
	eventually(t, 2*time.Second, "deleted, the model goes through as asked", func() bool { return modelOf(t, url, "chat") == "chat" })
}
