package kube

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sync"
	"sync/atomic"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// kindSpec is one resource kvgate watches.
type kindSpec struct {
	kind     string   // as in the objects: "Gateway"
	group    string   // "" is the core group
	versions []string // in order of preference; the first one served is watched
	resource string   // plural, as in URLs
	// core resources are always served: no discovery, and a failure to
	// list them is not a reason to leave them out.
	core bool
	// trim drops, in place, what kvgate does not read (after the metadata
	// and status every kind loses).
	trim func(map[string]any)
	// keepStatus keeps status (a Pod's address and readiness).
	keepStatus bool
	// ownStatus keeps status too, for the status writer to compare with
	// (status.go); a change of status alone is no change to translate.
	ownStatus bool
	indexers  cache.Indexers
}

const (
	groupGateway   = "gateway.networking.k8s.io"
	groupInference = "inference.networking.k8s.io"
	groupInferX    = "inference.networking.x-k8s.io"
	groupIstio     = "security.istio.io"

	// byService indexes EndpointSlices by namespace/service-name.
	byService = "service"
)

// Kind names, as in the objects.
const (
	kGatewayClass  = "GatewayClass"
	kGateway       = "Gateway"
	kHTTPRoute     = "HTTPRoute"
	kGrant         = "ReferenceGrant"
	kPool          = "InferencePool"
	kPoolAlpha     = "InferencePool/alpha"
	kObjective     = "InferenceObjective"
	kModel         = "InferenceModel"
	kPolicy        = "AuthorizationPolicy"
	kService       = "Service"
	kEndpointSlice = "EndpointSlice"
	kPod           = "Pod"
)

// kinds are what kvgate watches. key is the informer's name among them
// (two InferencePool groups share a kind).
var kinds = []struct {
	key  string
	spec kindSpec
}{
	{kGatewayClass, kindSpec{kind: "GatewayClass", group: groupGateway, versions: []string{"v1", "v1beta1"}, resource: "gatewayclasses", ownStatus: true}},
	{kGateway, kindSpec{kind: "Gateway", group: groupGateway, versions: []string{"v1", "v1beta1"}, resource: "gateways", ownStatus: true}},
	{kHTTPRoute, kindSpec{kind: "HTTPRoute", group: groupGateway, versions: []string{"v1", "v1beta1"}, resource: "httproutes", ownStatus: true}},
	{kGrant, kindSpec{kind: "ReferenceGrant", group: groupGateway, versions: []string{"v1", "v1beta1"}, resource: "referencegrants"}},
	{kPool, kindSpec{kind: "InferencePool", group: groupInference, versions: []string{"v1"}, resource: "inferencepools", ownStatus: true}},
	{kPoolAlpha, kindSpec{kind: "InferencePool", group: groupInferX, versions: []string{"v1alpha2"}, resource: "inferencepools"}},
	{kObjective, kindSpec{kind: "InferenceObjective", group: groupInferX, versions: []string{"v1alpha2"}, resource: "inferenceobjectives"}},
	// InferenceModel: the Inference Extension's v0 API (model name,
	// criticality, target models), which clusters of that time still hold.
	{kModel, kindSpec{kind: "InferenceModel", group: groupInferX, versions: []string{"v1alpha2"}, resource: "inferencemodels"}},
	{kPolicy, kindSpec{kind: "AuthorizationPolicy", group: groupIstio, versions: []string{"v1", "v1beta1"}, resource: "authorizationpolicies"}},
	{kService, kindSpec{kind: "Service", versions: []string{"v1"}, resource: "services", core: true, trim: trimService}},
	{kEndpointSlice, kindSpec{kind: "EndpointSlice", group: "discovery.k8s.io", versions: []string{"v1"}, resource: "endpointslices", core: true, trim: trimSlice,
		indexers: cache.Indexers{byService: sliceService}}},
	// Pods are watched per InferencePool (pods.go), not from this list.
}

// informer is one running watch.
type informer struct {
	key    string
	spec   kindSpec
	gvr    schema.GroupVersionResource
	inf    cache.SharedIndexInformer
	synced atomic.Bool // the first list is in the store and an event followed it
	// scope is the Pods a Pod informer watches (pods.go); stop ends it.
	scope *podScope
	stop  context.CancelFunc
	// forbidden: kvgate may not list this scope's Pods.
	forbidden atomic.Bool
}

func (in *informer) apiVersion() string {
	return schema.GroupVersion{Group: in.gvr.Group, Version: in.gvr.Version}.String()
}

// what names a resource for messages: "gateways.gateway.networking.k8s.io/v1".
func (s *kindSpec) what(version string) string {
	if s.group == "" {
		return s.resource + "/" + version
	}
	return s.resource + "." + s.group + "/" + version
}

// newInformer builds the informer of one served resource; it runs when ctx
// is given to run.
func (c *Controller) newInformer(key string, spec kindSpec, gvr schema.GroupVersionResource) (*informer, error) {
	res := c.dyn.Resource(gvr)
	return c.informerFor(key, spec, gvr, &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return res.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return res.Watch(ctx, o)
		},
	})
}

// informerFor builds an informer over lw: objects trimmed before they are
// stored, each change that kvgate reads marking the controller dirty.
func (c *Controller) informerFor(key string, spec kindSpec, gvr schema.GroupVersionResource, lw cache.ListerWatcher) (*informer, error) {
	inf := cache.NewSharedIndexInformerWithOptions(lw, &unstructured.Unstructured{}, cache.SharedIndexInformerOptions{
		Indexers:          spec.indexers,
		ObjectDescription: spec.what(gvr.Version),
	})
	in := &informer{key: key, spec: spec, gvr: gvr, inf: inf}
	apiVersion := in.apiVersion()
	if err := inf.SetTransform(func(obj any) (any, error) {
		if u, ok := obj.(*unstructured.Unstructured); ok {
			trimObject(u.Object, apiVersion, &spec)
		}
		return obj, nil
	}); err != nil {
		return nil, err
	}
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		c.watchError(in, err)
	})
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { c.changed(in) },
		UpdateFunc: func(old, cur any) {
			switch {
			case !sameContent(old, cur, spec.ownStatus):
				c.changed(in)
			case spec.ownStatus && in.synced.Load():
				c.markStatus() // someone wrote status: check it is still ours
			}
		},
		DeleteFunc: func(any) { c.changed(in) },
	}); err != nil {
		return nil, err
	}
	return in, nil
}

// watchError logs a broken watch once per informer and error text; the
// informer retries on its own with back-off.
func (c *Controller) watchError(in *informer, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	msg := err.Error()
	if apierrors.IsForbidden(err) {
		msg = "forbidden: grant kvgate's service account list and watch on " + in.spec.resource + " (see deploy/helm's ClusterRole)"
	}
	what := []any{"resource", in.spec.what(in.gvr.Version), "err", msg}
	if in.scope != nil {
		what = append(what, "namespace", in.scope.namespace, "selector", in.scope.selector)
	}
	if podWatchForbidden(in, err) && !in.forbidden.Swap(true) {
		c.markDirty() // translated without these Pods until the grant comes
	}
	c.once("watch "+in.key+" "+msg, func() {
		c.log.Warn("kubernetes: watch failed; retrying", what...)
	})
}

// sameContent reports whether an update changed nothing kvgate reads
// (trimmed objects equal but for resourceVersion, and status when
// ignoreStatus).
func sameContent(a, b any, ignoreStatus bool) bool {
	ua, ok1 := a.(*unstructured.Unstructured)
	ub, ok2 := b.(*unstructured.Unstructured)
	if !ok1 || !ok2 {
		return false
	}
	strip := func(o map[string]any) map[string]any {
		out := maps.Clone(o)
		if md, ok := o["metadata"].(map[string]any); ok {
			md = maps.Clone(md)
			delete(md, "resourceVersion")
			out["metadata"] = md
		}
		if ignoreStatus {
			delete(out, "status")
		}
		return out
	}
	return reflect.DeepEqual(strip(ua.Object), strip(ub.Object))
}

// trimObject drops what no kind's translation reads: it runs on every
// object before the informer stores it, so that the cache holds only what
// kvgate reads. The identity informers need (name, namespace, uid,
// resourceVersion) and labels stay; a missing apiVersion or kind is set.
func trimObject(o map[string]any, apiVersion string, spec *kindSpec) {
	if _, ok := o["apiVersion"].(string); !ok {
		o["apiVersion"] = apiVersion
	}
	if _, ok := o["kind"].(string); !ok {
		o["kind"] = spec.kind
	}
	if md, ok := o["metadata"].(map[string]any); ok {
		for k := range md {
			switch k {
			case "name", "namespace", "uid", "resourceVersion", "generation", "labels", "deletionTimestamp", "creationTimestamp":
			default:
				delete(md, k)
			}
		}
	}
	if !spec.keepStatus && !spec.ownStatus {
		delete(o, "status")
	}
	if spec.trim != nil {
		spec.trim(o)
	}
}

// keepOnly deletes every key of m not listed.
func keepOnly(m map[string]any, keys ...string) {
	for k := range m {
		keep := false
		for _, w := range keys {
			keep = keep || k == w
		}
		if !keep {
			delete(m, k)
		}
	}
}

func trimService(o map[string]any) {
	if spec, ok := o["spec"].(map[string]any); ok {
		keepOnly(spec, "selector", "ports", "type", "externalName")
	}
}

func trimSlice(o map[string]any) {
	keepOnly(o, "apiVersion", "kind", "metadata", "addressType", "endpoints", "ports")
	eps, _ := o["endpoints"].([]any)
	for _, e := range eps {
		if m, ok := e.(map[string]any); ok {
			keepOnly(m, "addresses", "conditions")
			if c, ok := m["conditions"].(map[string]any); ok {
				m["conditions"] = sharedConditions(c)
			}
		}
	}
}

// conditionSets holds one map for each combination of an endpoint's
// ready, serving and terminating (true, false or unset): the cached
// EndpointSlices share them instead of holding a map per endpoint (a
// third of an endpoint's memory). Nothing writes to a cached object, so
// sharing is safe; a map with other keys or values is kept as it is.
var conditionSets sync.Map // "ready,serving,terminating" as t/f/- → map[string]any

func sharedConditions(c map[string]any) map[string]any {
	var key [3]byte
	n := 0
	for i, k := range [3]string{"ready", "serving", "terminating"} {
		switch v, ok := c[k]; {
		case !ok:
			key[i] = '-'
		case v == true:
			key[i], n = 't', n+1
		case v == false:
			key[i], n = 'f', n+1
		default:
			return c
		}
	}
	if n != len(c) {
		return c // keys kvgate does not know: keep them
	}
	if m, ok := conditionSets.Load(string(key[:])); ok {
		return m.(map[string]any)
	}
	m, _ := conditionSets.LoadOrStore(string(key[:]), c)
	return m.(map[string]any)
}

// trimPod keeps a Pod's labels, address and Ready condition: what an
// InferencePool's endpoints are made of.
func trimPod(o map[string]any) {
	keepOnly(o, "apiVersion", "kind", "metadata", "status")
	st, ok := o["status"].(map[string]any)
	if !ok {
		return
	}
	keepOnly(st, "podIP", "conditions")
	conds, _ := st["conditions"].([]any)
	var ready []any
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Ready" {
			keepOnly(m, "type", "status")
			ready = append(ready, m)
		}
	}
	if ready == nil {
		delete(st, "conditions")
	} else {
		st["conditions"] = ready
	}
}

// sliceService is the namespace/service key of an EndpointSlice.
func sliceService(obj any) ([]string, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("kube: not an unstructured object: %T", obj)
	}
	svc := u.GetLabels()["kubernetes.io/service-name"]
	if svc == "" {
		return nil, nil
	}
	return []string{u.GetNamespace() + "/" + svc}, nil
}
