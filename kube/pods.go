package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// Pods are watched per InferencePool, not cluster-wide: one watch for each
// namespace and label selector of the InferencePools that the served
// routes send to, with that selector given to the API server, so that the
// cache holds the Pods kvgate routes to and no others (a node proxy of a
// cluster with 100,000 Pods keeps a few hundred). Watches start when a
// route first sends to a pool and stop when none does; a translation that
// needs a watch not yet listed waits for it (errPending), keeping the
// running configuration, rather than serving a pool without its Pods.

// podScope is the Pods of one InferencePool: its namespace and its label
// selector, in the API server's syntax.
type podScope struct {
	namespace, selector string
}

func (s podScope) String() string { return s.namespace + "/{" + s.selector + "}" }

// key names the scope's informer among the others.
func (s podScope) key() string { return kPod + " " + s.String() }

// scopeOf is the scope of a pool's selector; false for an empty one, which
// selects no Pod (as in adapt).
func scopeOf(ns string, sel map[string]string) (podScope, bool) {
	if len(sel) == 0 {
		return podScope{}, false
	}
	return podScope{namespace: ns, selector: labels.SelectorFromSet(sel).String()}, true
}

// errPending is a translation that waits for a watch's first list.
type errPending struct{ what []string }

func (e *errPending) Error() string {
	return "waiting for the first list of " + strings.Join(e.what, ", ")
}

func isPending(err error) bool {
	var p *errPending
	return errors.As(err, &p)
}

var podSpec = kindSpec{kind: "Pod", versions: []string{"v1"}, resource: "pods", core: true, trim: trimPod, keepStatus: true}

var podGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// watchPods makes the Pod watches those of want: it starts the missing
// ones and stops those no longer wanted. It returns the wanted scopes'
// informers that have listed (in want's order) and the scopes that have not.
// A scope kvgate may not list (forbidden) counts as listed, with no Pods,
// and is logged by its informer.
func (c *Controller) watchPods(want []podScope) (ready []*informer, pending []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := make(map[string]bool, len(want))
	for _, s := range want {
		key := s.key()
		keep[key] = true
		in := c.informers[key]
		if in == nil {
			in = c.newPodInformer(s)
			c.informers[key] = in
			c.log.Info("kubernetes: watching the Pods of an InferencePool", "namespace", s.namespace, "selector", s.selector)
		}
		switch {
		case in.synced.Load():
			ready = append(ready, in)
		case in.forbidden.Load():
		default:
			pending = append(pending, "pods "+s.String())
		}
	}
	for key, in := range c.informers {
		if in.scope != nil && !keep[key] {
			in.stop()
			delete(c.informers, key)
			c.log.Info("kubernetes: no longer watching Pods: no served route sends to their InferencePool", "namespace", in.scope.namespace, "selector", in.scope.selector)
		}
	}
	return ready, pending
}

// newPodInformer starts the watch of one scope (c.mu held).
func (c *Controller) newPodInformer(s podScope) *informer {
	ctx, cancel := context.WithCancel(c.ctx)
	res := c.dyn.Resource(podGVR).Namespace(s.namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = s.selector
			return res.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = s.selector
			return res.Watch(ctx, o)
		},
	}
	in, err := c.informerFor(kPod+" "+s.String(), podSpec, podGVR, lw)
	if err != nil { // only when the informer is already running, which a new one is not
		panic(fmt.Sprintf("kube: pod informer %s: %v", s, err))
	}
	in.scope, in.stop = &s, cancel
	go in.inf.RunWithContext(ctx)
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), in.inf.HasSynced) {
			in.synced.Store(true)
			c.markDirty()
		}
	}()
	return in
}

// scopedPods are the Pods of the scopes' informers, each once, sorted.
func scopedPods(ins []*informer) []map[string]any {
	seen := map[string]bool{}
	var out []map[string]any
	for _, in := range ins {
		for _, it := range in.inf.GetStore().List() {
			u, ok := it.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			if k := nsName(u.Object); !seen[k] {
				seen[k] = true
				out = append(out, u.Object)
			}
		}
	}
	sortObjects(out)
	return out
}

// podScopes are the scopes of the pools given (namespace/name of each
// informer's InferencePools), sorted and each once.
func (c *Controller) podScopes(pools []map[string]any) []podScope {
	var out []podScope
	for _, p := range pools {
		if s, ok := scopeOf(str(p, "metadata", "namespace"), poolSelector(p)); ok {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b podScope) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(out)
}

// podWatchForbidden is the informer's watch error handler's part for Pods:
// a scope kvgate may not list counts as listed, with no Pods.
func podWatchForbidden(in *informer, err error) bool {
	return in.scope != nil && apierrors.IsForbidden(err)
}
