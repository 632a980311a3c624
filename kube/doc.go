// Package kube is kvgate's Kubernetes mode (kvgate run --kubernetes): it
// watches a cluster's API server and keeps the proxy's configuration equal
// to what the cluster says.
//
// It owns the informers (client-go shared informers over unstructured
// objects, one per resource), choosing what to hand the translation, the
// files of the TLS Secrets that Gateway listeners name, and applying each
// result to the proxy: a whole Reload, or proxy.SetEndpoints when only
// endpoints changed. It watches GatewayClass, Gateway, HTTPRoute and
// ReferenceGrant (gateway.networking.k8s.io), InferencePool
// (inference.networking.k8s.io/v1 and inference.networking.x-k8s.io/v1alpha2),
// InferenceObjective and InferenceModel (inference.networking.x-k8s.io/
// v1alpha2), Istio AuthorizationPolicy (security.istio.io), Service and
// EndpointSlice (discovery.k8s.io/v1), and Pods per InferencePool: one
// watch per namespace and label selector of the pools the served routes
// send to (pods.go), never every Pod of the cluster. Secrets are read by name with get, never
// listed or watched: only those that a served Gateway's HTTPS listeners name,
// again every Options.SecretRefresh (rotation).
//
// It must not translate anything itself: the objects go to
// config/adapt.FromObjects with adapt.Options.Live, the same translation
// `kvgate adapt` runs on files; here are only the choices of which objects
// to hand over (the Gateways of GatewayClasses whose controllerName is
// Options.ControllerName, the HTTPRoutes attached to them, and what those
// refer to). It changes no cluster object but for their status, and must
// not block or crash when a custom resource is not installed or not
// readable: that kind is logged once, by name, and left out.
//
// Status (status.go) is written as a Gateway API implementation writes it:
// GatewayClass Accepted (classes of Options.ControllerName); Gateway
// Accepted and Programmed, status.addresses (the host each served listener
// is bound to, or Options.Addresses for 0.0.0.0) and status.listeners
// (Accepted, Programmed, ResolvedRefs; attachedRoutes as adapt attaches
// routes: parentRef, allowedRoutes and hostname intersection); HTTPRoute
// status.parents entries of its controllerName (Accepted, ResolvedRefs
// False with BackendNotFound, RefNotPermitted or InvalidKind); and
// InferencePool (v1) status.parents (Accepted, ResolvedRefs). Every
// reason comes from the translation's warnings and errors keyed by object
// (nothing is judged twice); every condition carries the object's
// generation, keeps its lastTransitionTime while its status holds, and an
// object is written (status subresource, update) only when its status
// differs. Other implementations' parent entries are kept. Only the replica
// holding the coordination.k8s.io Lease Options.LeaderElection names
// (leader.go; "kvgate-status" in the pod's namespace, released on stop)
// writes; every replica serves. A write that is forbidden or fails is
// logged once naming the object.
//
// A burst of changes is coalesced (Options.Debounce after the last event, at
// most Options.MaxDelay after the first); a state that does not translate or
// validate keeps the running configuration and logs one line naming the
// object. Pods and EndpointSlice endpoints that are not ready (or are
// terminating) get no new requests; requests in flight on them finish.
//
// Not done yet:
//   - Status: routes of a listener that is not Accepted get no
//     per-listener reason; GRPCRoute and the alpha InferencePool get no
//     status; supportedFeatures is not written; allowedRoutes.namespaces
//     from Selector admits every namespace (Namespaces are not watched).
//   - Listeners are fixed when the proxy starts: a Gateway listener added,
//     removed or changed later (address, HTTP/HTTPS, TLS Secret name) is
//     logged, and its status says Programmed False (Pending) with a message
//     asking for a restart; routes, pools, policies and endpoints follow the
//     cluster. A Secret's content does rotate without a restart (its files
//     are rewritten, and the listener re-reads them).
//   - CRDs installed after start are found by a discovery pass every
//     Options.Rediscover; one removed while running keeps its last objects.
package kube
