// Package adapt turns Kubernetes manifests into kvgate's native
// configuration (config.Config): Gateway API Gateway and HTTPRoute
// (gateway.networking.k8s.io v1, v1beta1), Inference Extension InferencePool
// (inference.networking.k8s.io/v1 and inference.networking.x-k8s.io
// v1alpha2, v1alpha1), InferenceModel and InferenceObjective, Istio
// AuthorizationPolicy (security.istio.io v1, v1beta1), and Service,
// EndpointSlice and Pod as sources of endpoints. Files may hold many "---"
// separated documents and `kind: List` objects.
//
// It owns the mapping and nothing else: it must not contact a cluster, open
// the certificate files it names, or change the native schema's meaning. The
// result always passes config.Validate; what cannot be honoured is a Warning
// naming the object (kind namespace/name) and the field path, never dropped
// in silence. Unknown keys anywhere in an object's spec are warnings too.
//
// # Mapping and the choices it makes
//
// Gateway: each HTTP or HTTPS listener becomes a kvgate listener named
// <gateway>-<listener> on Options.Bind (0.0.0.0) and its port, unless
// Options.Listen names another address. HTTPS needs tls mode Terminate and a
// Secret certificateRef, served from the files of --cert SECRET=CERT,KEY; with
// no --cert the files are secrets/<secret>/tls.crt and tls.key (the layout of
// a mounted Secret, relative to kvgate's working directory), with a warning.
// Gateway listeners that share a port share one kvgate listener (hostnames
// stay on the routes); kvgate serves one certificate per address.
// allowedRoutes.namespaces from Same and All are honoured. With no Gateway in
// the input, every route is served on one listener "default" at :8080.
//
// HTTPRoute: each rule becomes one route named <route>-<ruleIndex>, or
// <route>-<ruleName> when the rule has a name; a name already taken gets the
// namespace in front. parentRefs (Gateway, sectionName, port) pick the
// listeners; route and listener hostnames intersect as in Gateway API. When
// a rule's listeners answer different hostnames it becomes one route per
// group of listeners, named with a -<listener> suffix. Matches, the five core
// filters, weights, timeouts and the experimental retry (attempts default 1)
// carry over.
//
// Backends: a Service backendRef becomes pool <service>-<port>. Its endpoints
// come from --endpoints (keyed by that pool name or the Service name; an
// address without a port gets the Service's targetPort), else from the ready
// addresses of the Service's EndpointSlices in the input, else, when the
// Service itself is in the input, from cluster DNS (its ExternalName, or
// <service>.<namespace>.svc.cluster.local:<port>, with a warning). An
// InferencePool backendRef uses that pool. A backendRef that resolves to
// nothing (unknown kind, object not in the input) is dropped with a warning:
// Gateway API would answer its share of traffic with 500, kvgate gives that
// share to the rule's other backends instead, because the native schema has
// no pool without endpoints. A rule left with no backend, or with only
// weight-0 backends, is dropped with a warning (its requests fall to other
// routes or 404). Cross-namespace references are accepted without a
// ReferenceGrant check.
//
// InferencePool: becomes a pool with `inference: {}` (picker prefix-affinity)
// named as the InferencePool. Endpoints come from --endpoints (addresses
// without a port get every target port), else, when the input holds Pods,
// from the ready ones it selects (Ready condition True, not terminating: its
// podIP on every target port, one endpoint per data-parallel rank), else
// from the EndpointSlices of Services in the input whose selector equals
// the pool's; none is an error. EndpointSlice endpoints count when ready
// (serving when ready is unset) and never while terminating.
// The endpoint picker reference is a warning: kvgate picks in process.
// Published manifests mix the versions' field names, so each is read under
// every version: v1's selector.matchLabels, targetPorts and
// endpointPickerRef, the alphas' flat selector, targetPortNumber and
// extensionRef, and targetPort (in no version). A spelling that is not the
// declared version's own is a warning naming the field and its line; a
// selector that is not a mapping of string labels, matchExpressions, and
// target ports that disagree are errors.
//
// InferenceModel: for every route that sends to the model's pool, a copy of
// the route that also matches the body's `model` is added in front of it,
// with the targetModels as a weighted modelRewrite on the pool's backend and
// criticality as priority (Critical 1, Standard 0, Sheddable -1). If no route
// sends to the pool, one route matching only the model is added on every
// listener. InferenceObjective becomes a pool objective (name → priority).
//
// AuthorizationPolicy: action ALLOW or DENY (AUDIT and CUSTOM are warned and
// skipped); from.source, to.operation and when carry over. What kvgate cannot
// evaluate (requestPrincipals, remoteIpBlocks, unsupported when keys, ...)
// fails closed as in Istio: an ALLOW rule holding it is dropped whole, a DENY
// rule drops just that part. The selector picks pools: a pool's workload
// labels are its selector's (Service spec.selector or InferencePool selector)
// merged with --labels POOL=k=v,k=v, which is how labels are given on a bare
// VM; POOL is any name --endpoints takes for the pool (the kvgate pool name,
// <service>-<port>, namespace/service or the Service name; an InferencePool's
// name), and a --labels key that names no pool is a warning. A policy applies
// to pools of its own namespace only, except in the root namespace
// (Options.RootNamespace, istio-system), where a policy without a selector
// applies to every pool. A policy that selects no pool is skipped with a
// warning that gives the --labels flag, with its value, that would make it
// apply to each pool whose labels do not contradict the selector, or says
// that no flag can (the policy is in a namespace without pools).
//
// A cluster's live state (Options.Live, kvgate run --kubernetes through
// FromObjects) changes a few of these choices, listed at Options.Live: pools
// may be empty (503 until an endpoint is ready), a missing TLS Secret leaves
// its listener out, and references to other namespaces need a
// ReferenceGrant.
//
// Entry points: Parse and Load adapt manifests; LoadAny reads either a native
// configuration or manifests, for `kvgate run` and `kvgate validate`;
// FromObjects adapts decoded objects, for `kvgate run --kubernetes`; it
// reads EndpointSlices and Pods (thousands in a cluster) straight from their
// decoded form, with the same result as through YAML (direct.go). A Result
// also counts the routes attached to each Gateway listener (attachedRoutes,
// for Gateway status).
package adapt
