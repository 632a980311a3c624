package adapt

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kvgate/kvgate/config"
)

// API groups read by the adapter.
const (
	groupGateway        = "gateway.networking.k8s.io"
	groupInference      = "inference.networking.k8s.io"
	groupInferenceAlpha = "inference.networking.x-k8s.io"
	groupIstioSecurity  = "security.istio.io"
	groupDiscovery      = "discovery.k8s.io"
)

// adapter holds one conversion in progress.
type adapter struct {
	opts  Options
	cfg   *config.Config
	warns []Warning
	errs  Errors

	// Parallel to cfg.Listeners, cfg.Routes, cfg.Pools, cfg.Authorization:
	// the object each entry came from. origin is built from them at the end.
	listenerFrom, routeFrom, poolFrom, policyFrom []Resource
	origin                                        map[string]Resource

	gateways   []*gwInfo
	gwByKey    map[string]*gwInfo
	byAddress  map[string]*gwListenerInfo // kvgate listener address → first Gateway listener there
	services   map[string]*serviceDoc     // namespace/name
	slices     map[string][]*sliceDoc     // namespace/service-name
	ipools     map[string]*poolInfo       // namespace/name of an InferencePool
	svcPools   map[string]*poolInfo       // namespace/service/port
	pools      map[string]*poolInfo       // kvgate pool name
	baseRoutes map[string]bool            // kvgate routes adapted from HTTPRoutes
	used       map[string]map[string]bool // list → names taken
	labelKeys  map[string]bool            // --labels keys that named a pool
	pods       map[string][]*podDoc       // namespace → Pods in the input
	podsSeen   bool                       // the input holds Pods (maybe none ready)
	grants     map[string][]*grantDoc     // namespace → ReferenceGrants there
	attached   map[string]map[string]bool // namespace/gateway/listener → routes attached (namespace/name)
}

// poolInfo is a kvgate pool and what AuthorizationPolicy selectors see of it.
type poolInfo struct {
	name      string
	namespace string
	// labels are the pool's workload labels: selector merged with --labels.
	labels map[string]string
	// selector is what the manifests say of the pods (a Service's or an
	// InferencePool's selector), from names its object ("Service ai/vllm").
	selector map[string]string
	from     string
	// flagKeys are the --labels keys that gave labels to this pool.
	flagKeys []string
}

func newAdapter(opts Options) *adapter {
	if opts.Bind == "" {
		opts.Bind = "0.0.0.0"
	}
	if opts.RootNamespace == "" {
		opts.RootNamespace = "istio-system"
	}
	return &adapter{
		opts:       opts,
		cfg:        &config.Config{},
		gwByKey:    map[string]*gwInfo{},
		byAddress:  map[string]*gwListenerInfo{},
		services:   map[string]*serviceDoc{},
		slices:     map[string][]*sliceDoc{},
		ipools:     map[string]*poolInfo{},
		svcPools:   map[string]*poolInfo{},
		pools:      map[string]*poolInfo{},
		baseRoutes: map[string]bool{},
		used:       map[string]map[string]bool{},
		labelKeys:  map[string]bool{},
		pods:       map[string][]*podDoc{},
		grants:     map[string][]*grantDoc{},
		attached:   map[string]map[string]bool{},
	}
}

func (a *adapter) warn(res Resource, field, format string, args ...any) {
	a.warnAt(res, 0, field, format, args...)
}

// warnAt is warn for a field whose own line is known (0: unknown).
func (a *adapter) warnAt(res Resource, line int, field, format string, args ...any) {
	a.warns = append(a.warns, Warning{Resource: res, Field: field, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (a *adapter) fail(res Resource, field, format string, args ...any) {
	a.failAt(res, 0, field, format, args...)
}

// failAt is fail for a field whose own line is known (0: unknown).
func (a *adapter) failAt(res Resource, line int, field, format string, args ...any) {
	a.errs = append(a.errs, &Error{Resource: res, Field: field, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// unique returns name, or namespace-name (then -2, -3, ...) when list
// already has it, and records the result.
func (a *adapter) unique(list, namespace, name string) string {
	used := a.used[list]
	if used == nil {
		used = map[string]bool{}
		a.used[list] = used
	}
	n := name
	if used[n] {
		n = namespace + "-" + name
		for i := 2; used[n]; i++ {
			n = namespace + "-" + name + "-" + strconv.Itoa(i)
		}
	}
	used[n] = true
	return n
}

// typed pairs a decoded document with its object.
type typed[T any] struct {
	d   doc
	obj *T
}

// run classifies the documents and converts them in dependency order.
func (a *adapter) run(docs []doc) {
	var (
		gateways   []typed[gatewayDoc]
		routes     []typed[routeDoc]
		pools      []typed[poolDoc]
		models     []typed[modelDoc]
		objectives []typed[objectiveDoc]
		policies   []typed[policyDoc]
		unknown    = map[*policyDoc][]fieldAt{}
	)
	for _, d := range docs {
		group, version := splitAPIVersion(d.apiVersion)
		kind := d.res.Kind
		switch {
		case group == groupGateway && (version == "v1" || version == "v1beta1") && kind == "Gateway":
			gateways = appendTyped(a, gateways, d)
		case group == groupGateway && (version == "v1" || version == "v1beta1") && kind == "HTTPRoute":
			routes = appendTyped(a, routes, d)
		case (group == groupInference && version == "v1" ||
			group == groupInferenceAlpha && (version == "v1alpha2" || version == "v1alpha1")) && kind == "InferencePool":
			pools = appendTyped(a, pools, d)
		case (group == groupInferenceAlpha || group == groupInference) && kind == "InferenceModel":
			models = appendTyped(a, models, d)
		case (group == groupInferenceAlpha || group == groupInference) && kind == "InferenceObjective":
			objectives = appendTyped(a, objectives, d)
		case group == groupIstioSecurity && (version == "v1" || version == "v1beta1") && kind == "AuthorizationPolicy":
			var p policyDoc
			u, err := decodeInto(d, &p)
			if err != nil {
				a.errs = append(a.errs, err.(*Error))
				continue
			}
			unknown[&p] = u
			policies = append(policies, typed[policyDoc]{d, &p})
		case group == "" && version == "v1" && kind == "Service":
			if s := decodeTyped[serviceDoc](a, d); s != nil {
				a.services[d.res.Namespace+"/"+d.res.Name] = s
			}
		case group == groupDiscovery && version == "v1" && kind == "EndpointSlice":
			if s := decodeTyped[sliceDoc](a, d); s != nil {
				svc := s.Metadata.Labels["kubernetes.io/service-name"]
				if svc == "" {
					a.warn(d.res, "metadata.labels", "no kubernetes.io/service-name label, so no Service owns this slice; ignored")
					continue
				}
				key := d.res.Namespace + "/" + svc
				a.slices[key] = append(a.slices[key], s)
			}
		case group == "" && version == "v1" && kind == "Pod":
			a.podsSeen = true
			var p podDoc
			if err := decodePod(d, &p); err != nil {
				a.warn(d.res, "", "cannot read the Pod (%v); ignored", trimYAMLErr(err))
				continue
			}
			a.pods[d.res.Namespace] = append(a.pods[d.res.Namespace], &p)
		case kind == "ReferenceGrant" && group == groupGateway && a.opts.Live:
			if g := decodeTyped[grantDoc](a, d); g != nil {
				a.grants[d.res.Namespace] = append(a.grants[d.res.Namespace], g)
			}
		case kind == "ReferenceGrant" && group == groupGateway:
			a.warn(d.res, "", "not needed: kvgate accepts cross-namespace references (it has no namespaces); ignored")
		default:
			a.warn(d.res, "", "%s %s is not supported (kvgate adapts Gateway, HTTPRoute, InferencePool, InferenceModel, InferenceObjective, AuthorizationPolicy, Service, EndpointSlice, Pod); ignored", d.apiVersion, kind)
		}
	}
	for _, g := range gateways {
		a.gateway(g.d.res, g.obj)
	}
	if len(gateways) == 0 && !a.opts.Live {
		a.defaultListener()
	}
	for _, p := range pools {
		a.inferencePoolDoc(p.d, p.obj)
	}
	for _, r := range routes {
		a.httpRoute(r.d.res, r.obj)
	}
	for _, m := range models {
		a.inferenceModel(m.d.res, m.obj)
	}
	for _, o := range objectives {
		a.inferenceObjective(o.d.res, o.obj)
	}
	a.unusedLabels()
	for _, p := range policies {
		a.policy(p.d, p.obj, unknown[p.obj])
	}
	a.origin = map[string]Resource{}
	for list, from := range map[string][]Resource{"listeners": a.listenerFrom, "routes": a.routeFrom, "pools": a.poolFrom, "authorization": a.policyFrom} {
		for i, r := range from {
			a.origin[list+"["+strconv.Itoa(i)+"]"] = r
		}
	}
}

// appendTyped decodes d as a T, warns about keys T does not know, and appends it.
func appendTyped[T any](a *adapter, list []typed[T], d doc) []typed[T] {
	if obj := decodeTyped[T](a, d); obj != nil {
		list = append(list, typed[T]{d, obj})
	}
	return list
}

func decodeTyped[T any](a *adapter, d doc) *T {
	obj := new(T)
	var unknown []fieldAt
	var err error
	if mr, ok := any(obj).(mapReader); ok && d.node == nil {
		unknown, err = readMapped(d, mr)
	} else {
		unknown, err = decodeInto(d, obj)
	}
	if err != nil {
		a.errs = append(a.errs, err.(*Error))
		return nil
	}
	for _, u := range unknown {
		a.warnAt(d.res, u.line, u.path, "is not supported; ignored")
	}
	return obj
}

// decodePod reads a Pod from its node or, without one, its decoded form.
func decodePod(d doc, p *podDoc) error {
	if d.node != nil {
		return safeNodeDecode(d.node, p)
	}
	var r mapRead
	p.readMap(d.obj, &r)
	return r.err
}

// splitAPIVersion splits "group/version"; the core group is "".
func splitAPIVersion(av string) (group, version string) {
	if g, v, ok := strings.Cut(av, "/"); ok {
		return g, v
	}
	return "", av
}

func deref(s *string, def string) string {
	if s == nil {
		return def
	}
	return *s
}

// defaultListener serves routes when the input has no Gateway.
func (a *adapter) defaultListener() {
	addr := a.opts.Bind + ":8080"
	if l, ok := a.opts.Listen["default"]; ok {
		addr = l
	}
	a.cfg.Listeners = append(a.cfg.Listeners, config.Listener{Name: "default", Address: addr})
	a.listenerFrom = append(a.listenerFrom, Resource{})
	a.used["listeners"] = map[string]bool{"default": true}
	a.warn(Resource{}, "", "the input has no Gateway: routes are served on listener \"default\" at %s (plain HTTP); change it with --listen default=HOST:PORT", addr)
}

func (a *adapter) addPool(res Resource, p config.Pool, info *poolInfo) {
	p.Discovered = a.opts.Live && p.DNS == ""
	a.cfg.Pools = append(a.cfg.Pools, p)
	a.poolFrom = append(a.poolFrom, res)
	a.pools[p.Name] = info
}
