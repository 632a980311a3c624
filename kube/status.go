package kube

import (
	"cmp"
	"context"
	"errors"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/config/adapt"
)

// This file writes Gateway API status: GatewayClass, Gateway (with its
// listeners and addresses), HTTPRoute parents and InferencePool parents,
// on the objects kvgate serves. What is wrong with an object comes from the
// translation's warnings and errors (adapt), keyed by the object they name;
// nothing is judged here that adapt did not say. Only the replica holding
// the Lease writes (leader.go), through the status subresource, and only
// when the status differs from what the object has.

// Condition types and reasons, as the Gateway API and Inference Extension
// specifications spell them.
const (
	condAccepted     = "Accepted"
	condProgrammed   = "Programmed"
	condResolvedRefs = "ResolvedRefs"

	reasonAccepted              = "Accepted"
	reasonProgrammed            = "Programmed"
	reasonResolvedRefs          = "ResolvedRefs"
	reasonPending               = "Pending"
	reasonInvalid               = "Invalid"
	reasonListenersNotValid     = "ListenersNotValid"
	reasonUnsupportedProtocol   = "UnsupportedProtocol"
	reasonPortUnavailable       = "PortUnavailable"
	reasonInvalidCertificateRef = "InvalidCertificateRef"
	reasonRefNotPermitted       = "RefNotPermitted"
	reasonBackendNotFound       = "BackendNotFound"
	reasonInvalidKind           = "InvalidKind"
	reasonNoMatchingParent      = "NoMatchingParent"
	reasonUnsupportedValue      = "UnsupportedValue"
)

// translation is what the last translation said, for status.
type translation struct {
	warns    []adapt.Warning
	errs     []*adapt.Error
	attached map[string]int // namespace/gateway/listener → attachedRoutes
	// listeners are those the cluster asks for (nil when it did not
	// translate); the running ones may differ until a restart.
	listeners []config.Listener
}

// record keeps what a translation said and asks for a status pass.
func (c *Controller) record(res *adapt.Result, err error) {
	var t translation
	if res != nil {
		t.warns, t.attached = res.Warnings, res.AttachedRoutes
		if res.Config != nil {
			t.listeners = res.Config.Listeners
		}
	}
	var es adapt.Errors
	var e *adapt.Error
	switch {
	case errors.As(err, &es):
		t.errs = es
	case errors.As(err, &e):
		t.errs = []*adapt.Error{e}
	}
	c.mu.Lock()
	c.last = t
	c.mu.Unlock()
	c.markStatus()
}

func (c *Controller) markStatus() {
	select {
	case c.statusDirty <- struct{}{}:
	default:
	}
}

// writeStatus keeps the status of what kvgate serves true until ctx ends
// (the Lease is lost).
func (c *Controller) writeStatus(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.statusDirty:
		}
		if !c.settle(ctx, c.statusDirty) {
			return
		}
		if c.allSynced() {
			c.syncStatus(ctx)
		}
	}
}

// cond is one condition to write.
type cond struct{ typ, status, reason, msg string }

// conditions builds a condition list for an object of generation gen,
// keeping each condition's lastTransitionTime from prev when its status is
// unchanged.
func conditions(prev []any, gen int64, now string, cs ...cond) []any {
	out := make([]any, 0, len(cs))
	for _, cd := range cs {
		ltt := now
		for _, p := range prev {
			pm := asMap(p)
			if str(pm, "type") == cd.typ && str(pm, "status") == cd.status && str(pm, "lastTransitionTime") != "" {
				ltt = str(pm, "lastTransitionTime")
			}
		}
		msg := cd.msg
		if len(msg) > 32000 {
			msg = msg[:32000]
		}
		out = append(out, map[string]any{
			"type": cd.typ, "status": cd.status, "reason": cd.reason, "message": msg,
			"observedGeneration": gen, "lastTransitionTime": ltt,
		})
	}
	return out
}

func generation(o map[string]any) int64 {
	g, _ := at(o, "metadata", "generation").(int64)
	return g
}

// statusFunc builds an object's new status from its current one.
type statusFunc func(obj map[string]any, now string) map[string]any

// syncStatus writes every status that differs from the cluster's.
func (c *Controller) syncStatus(ctx context.Context) {
	c.mu.Lock()
	last, running := c.last, c.listeners
	c.mu.Unlock()
	byObj := map[string][]adapt.Warning{}
	for _, w := range last.warns {
		byObj[w.Resource.String()] = append(byObj[w.Resource.String()], w)
	}
	errs := map[string][]*adapt.Error{}
	for _, e := range last.errs {
		errs[e.Resource.String()] = append(errs[e.Resource.String()], e)
	}
	res := func(kind string, o map[string]any) string {
		return kind + " " + nsName(o)
	}

	ours := map[string]bool{}
	for _, gc := range c.objects(kGatewayClass) {
		if str(gc, "spec", "controllerName") != c.opts.ControllerName {
			continue
		}
		ours[str(gc, "metadata", "name")] = true
		c.putStatus(ctx, kGatewayClass, gc, func(o map[string]any, now string) map[string]any {
			st := cloneMap(asMap(o["status"]))
			st["conditions"] = conditions(list(o, "status", "conditions"), generation(o), now,
				cond{condAccepted, "True", reasonAccepted, "kvgate (" + c.opts.ControllerName + ") serves the Gateways of this class"})
			return st
		})
	}

	gateways := map[string]map[string]any{}
	for _, gw := range c.objects(kGateway) {
		if ours[str(gw, "spec", "gatewayClassName")] {
			gateways[nsName(gw)] = gw
		}
	}
	routes := c.objects(kHTTPRoute)
	poolParents := map[string]map[string]bool{} // pool → gateways of the routes that use it
	for _, r := range routes {
		ws, es := byObj[res(kHTTPRoute, r)], errs[res(kHTTPRoute, r)]
		parents := c.routeParents(r, gateways, ws, es)
		if parents == nil && !hasOurParent(r, c.opts.ControllerName) {
			continue
		}
		if len(parents) > 0 {
			rf := newRefs()
			rf.route(r)
			for key := range rf.pools[kPool] {
				if poolParents[key] == nil {
					poolParents[key] = map[string]bool{}
				}
				for _, p := range parents {
					poolParents[key][p.gateway] = true
				}
			}
		}
		c.putStatus(ctx, kHTTPRoute, r, func(o map[string]any, now string) map[string]any {
			st := cloneMap(asMap(o["status"]))
			var out []any
			for _, p := range list(o, "status", "parents") {
				if str(asMap(p), "controllerName") != c.opts.ControllerName {
					out = append(out, p) // another implementation's
				}
			}
			prev := func(ref map[string]any) []any {
				for _, p := range list(o, "status", "parents") {
					pm := asMap(p)
					if str(pm, "controllerName") == c.opts.ControllerName && reflect.DeepEqual(asMap(pm["parentRef"]), ref) {
						return list(pm, "conditions")
					}
				}
				return nil
			}
			for _, p := range parents {
				out = append(out, map[string]any{
					"parentRef": p.ref, "controllerName": c.opts.ControllerName,
					"conditions": conditions(prev(p.ref), generation(o), now, p.cond...),
				})
			}
			if len(out) > 32 {
				out = out[:32]
			}
			st["parents"] = out
			if len(out) == 0 {
				st["parents"] = []any{}
			}
			return st
		})
	}

	for _, key := range sortedKeys(gateways) {
		gw := gateways[key]
		c.putStatus(ctx, kGateway, gw, c.gatewayStatus(gw, byObj[res(kGateway, gw)], errs[res(kGateway, gw)], last, running))
	}

	for _, p := range c.objects(kPool) {
		gws := poolParents[nsName(p)]
		if gws == nil && !hasOurParent(p, c.opts.ControllerName) {
			continue
		}
		ws := byObj[res(kPool, p)]
		c.putStatus(ctx, kPool, p, func(o map[string]any, now string) map[string]any {
			st := cloneMap(asMap(o["status"]))
			var out []any
			for _, e := range list(o, "status", "parents") {
				if str(asMap(e), "controllerName") != c.opts.ControllerName {
					out = append(out, e)
				}
			}
			for _, g := range sortedKeys(gws) {
				ns, name, _ := strings.Cut(g, "/")
				ref := map[string]any{"group": groupGateway, "kind": "Gateway", "namespace": ns, "name": name}
				var prev []any
				for _, e := range list(o, "status", "parents") {
					if em := asMap(e); str(em, "controllerName") == c.opts.ControllerName && reflect.DeepEqual(asMap(em["parentRef"]), ref) {
						prev = list(em, "conditions")
					}
				}
				resolved := cond{condResolvedRefs, "True", reasonResolvedRefs, "kvgate picks endpoints in process"}
				if len(ws) > 0 {
					resolved.msg += "; " + joinWarnings(ws)
				}
				out = append(out, map[string]any{
					"parentRef": ref, "controllerName": c.opts.ControllerName,
					"conditions": conditions(prev, generation(o), now,
						cond{condAccepted, "True", reasonAccepted, "an HTTPRoute of Gateway " + g + " sends traffic to this pool"}, resolved),
				})
			}
			if len(out) > 32 {
				out = out[:32]
			}
			st["parents"] = out
			return st
		})
	}
}

// hasOurParent reports whether o's status has a parent entry of ours
// (a route or pool kvgate served before: its entry is to be removed).
func hasOurParent(o map[string]any, controller string) bool {
	for _, p := range list(o, "status", "parents") {
		if str(asMap(p), "controllerName") == controller {
			return true
		}
	}
	return false
}

// routeParent is the status of one of a route's parentRefs that names a
// Gateway kvgate serves.
type routeParent struct {
	gateway string // namespace/name
	ref     map[string]any
	cond    []cond // Accepted, ResolvedRefs
}

// routeParents are the statuses of r's parentRefs naming gateways.
func (c *Controller) routeParents(r map[string]any, gateways map[string]map[string]any, ws []adapt.Warning, es []*adapt.Error) []routeParent {
	ns := str(r, "metadata", "namespace")
	resolved := cond{condResolvedRefs, "True", reasonResolvedRefs, "every backend is resolved"}
	var problems []string
	for _, w := range ws {
		if !strings.Contains(w.Field, "backendRef") || !strings.Contains(w.Msg, "dropped") {
			continue
		}
		reason := reasonBackendNotFound
		switch {
		case strings.Contains(w.Msg, "ReferenceGrant"):
			reason = reasonRefNotPermitted
		case strings.Contains(w.Msg, "is not supported (Service or InferencePool)"):
			reason = reasonInvalidKind
		}
		if resolved.status == "True" {
			resolved = cond{condResolvedRefs, "False", reason, ""}
		}
		problems = append(problems, w.Field+": "+w.Msg)
	}
	if len(problems) > 0 {
		resolved.msg = strings.Join(problems, "; ")
	}
	var out []routeParent
	for j, p := range list(r, "spec", "parentRefs") {
		m := asMap(p)
		if cmp.Or(str(m, "group"), groupGateway) != groupGateway || cmp.Or(str(m, "kind"), "Gateway") != "Gateway" {
			continue
		}
		gw := ref(cmp.Or(str(m, "namespace"), ns), str(m, "name"))
		if gateways[gw] == nil {
			continue
		}
		pref := cloneMap(m)
		pref["group"], pref["kind"] = groupGateway, "Gateway"
		accepted := cond{condAccepted, "True", reasonAccepted, "attached to Gateway " + gw}
		field := "spec.parentRefs[" + strconv.Itoa(j) + "]"
		for _, w := range ws {
			if w.Field == field {
				accepted = cond{condAccepted, "False", reasonNoMatchingParent, w.Msg}
			}
		}
		if len(es) > 0 {
			msgs := make([]string, len(es))
			for i, e := range es {
				msgs[i] = strings.TrimPrefix(e.Error(), "adapt: ")
			}
			accepted = cond{condAccepted, "False", reasonUnsupportedValue, strings.Join(msgs, "; ") + " (kvgate keeps its running configuration)"}
		}
		out = append(out, routeParent{gateway: gw, ref: pref, cond: []cond{accepted, resolved}})
	}
	return out
}

// listenerState is what the translation said about one Gateway listener.
type listenerState struct {
	accepted, resolved cond
	programmed         bool
	restart            string // why not programmed: it needs a restart
}

// gatewayStatus builds a Gateway's status: conditions, one entry per
// listener, and the addresses its programmed listeners are bound to.
func (c *Controller) gatewayStatus(gw map[string]any, ws []adapt.Warning, es []*adapt.Error, last translation, running []config.Listener) statusFunc {
	name, ns := str(gw, "metadata", "name"), str(gw, "metadata", "namespace")
	ls := list(gw, "spec", "listeners")
	states := make([]listenerState, len(ls))
	var addrs []string
	anyAccepted, anyProgrammed := false, false
	for i, l := range ls {
		lm := asMap(l)
		lname := str(lm, "name")
		prefix := "spec.listeners[" + strconv.Itoa(i) + "]"
		st := listenerState{
			accepted: cond{condAccepted, "True", reasonAccepted, "listener accepted"},
			resolved: cond{condResolvedRefs, "True", reasonResolvedRefs, "references resolved"},
		}
		for _, w := range ws {
			switch {
			case w.Field == prefix+".protocol":
				st.accepted = cond{condAccepted, "False", reasonUnsupportedProtocol, w.Msg}
			case w.Field == prefix+".port" || w.Field == prefix && strings.Contains(w.Msg, "shares address"):
				st.accepted = cond{condAccepted, "False", reasonPortUnavailable, w.Msg}
			case strings.HasPrefix(w.Field, prefix+".tls") && strings.Contains(w.Msg, "ReferenceGrant"):
				st.resolved = cond{condResolvedRefs, "False", reasonRefNotPermitted, w.Msg}
			case (strings.HasPrefix(w.Field, prefix+".tls") || w.Field == prefix) && strings.Contains(w.Msg, "listener "+lname+" ignored"):
				st.resolved = cond{condResolvedRefs, "False", reasonInvalidCertificateRef, w.Msg}
			}
		}
		if st.accepted.status == "True" && st.resolved.status == "True" {
			anyAccepted = true
			addr := c.listenAddress(name+"-"+lname, lm)
			run, ok := servingListener(running, ns, name, lname, addr)
			want, wanted := servingListener(last.listeners, ns, name, lname, addr)
			switch {
			case !ok:
				st.restart = "kvgate's listeners are fixed when it starts: restart kvgate (kubectl rollout restart daemonset/kvgate) to serve this listener on " + addr
			case wanted && !reflect.DeepEqual(run, want):
				st.restart = "kvgate serves this listener as it was when it started (" + listenerChange(run, want) +
					"); restart kvgate (kubectl rollout restart daemonset/kvgate) to serve it as it is now"
			default:
				st.programmed = true
				anyProgrammed = true
			}
			if ok { // served, maybe as it was
				if host, _, err := net.SplitHostPort(run.Address); err == nil {
					addrs = append(addrs, c.reportedHosts(host)...)
				}
			}
		} else if st.accepted.status == "True" {
			anyAccepted = true
		}
		states[i] = st
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	serving := running != nil
	return func(o map[string]any, now string) map[string]any {
		gen := generation(o)
		st := cloneMap(asMap(o["status"]))
		accepted := cond{condAccepted, "True", reasonAccepted, "served by kvgate"}
		if len(ls) > 0 && !anyAccepted {
			accepted = cond{condAccepted, "False", reasonListenersNotValid, "no listener is valid"}
		}
		if len(es) > 0 {
			accepted = cond{condAccepted, "False", reasonInvalid, strings.TrimPrefix(es[0].Error(), "adapt: ")}
		}
		programmed := cond{condProgrammed, "True", reasonProgrammed, "kvgate serves this Gateway"}
		switch {
		case !serving:
			programmed = cond{condProgrammed, "False", reasonPending, "kvgate has no configuration running yet"}
		case !anyProgrammed:
			programmed = cond{condProgrammed, "False", reasonInvalid, "no listener of this Gateway is served (a listener added after kvgate started needs a restart)"}
		}
		st["conditions"] = conditions(list(o, "status", "conditions"), gen, now, accepted, programmed)
		prevListeners := list(o, "status", "listeners")
		var lout []any
		for i, l := range ls {
			lm := asMap(l)
			lname := str(lm, "name")
			var prev []any
			for _, pl := range prevListeners {
				if str(asMap(pl), "name") == lname {
					prev = list(asMap(pl), "conditions")
				}
			}
			s := states[i]
			prog := cond{condProgrammed, "True", reasonProgrammed, "served"}
			switch {
			case s.accepted.status != "True" || s.resolved.status != "True":
				prog = cond{condProgrammed, "False", reasonInvalid, "not served: see Accepted and ResolvedRefs"}
			case !serving:
				prog = cond{condProgrammed, "False", reasonPending, "kvgate has no configuration running yet"}
			case !s.programmed:
				prog = cond{condProgrammed, "False", reasonPending, s.restart}
			}
			kinds := []any{}
			if p := str(lm, "protocol"); p == "HTTP" || p == "HTTPS" {
				kinds = []any{map[string]any{"group": groupGateway, "kind": "HTTPRoute"}}
			}
			lout = append(lout, map[string]any{
				"name":           lname,
				"supportedKinds": kinds,
				"attachedRoutes": int64(last.attached[ref(ns, name)+"/"+lname]),
				"conditions":     conditions(prev, gen, now, s.accepted, prog, s.resolved),
			})
		}
		if lout == nil {
			delete(st, "listeners")
		} else {
			st["listeners"] = lout
		}
		if len(addrs) == 0 {
			delete(st, "addresses")
		} else {
			var out []any
			for _, a := range addrs {
				typ := "IPAddress"
				if net.ParseIP(a) == nil {
					typ = "Hostname"
				}
				out = append(out, map[string]any{"type": typ, "value": a})
			}
			st["addresses"] = out
		}
		return st
	}
}

// listenAddress is where adapt puts listener kvName: --listen, else
// --bind and the listener's port.
func (c *Controller) listenAddress(kvName string, l map[string]any) string {
	if a, ok := c.opts.Adapt.Listen[kvName]; ok {
		return a
	}
	port, _ := l["port"].(int64)
	return net.JoinHostPort(c.opts.Adapt.Bind, strconv.FormatInt(port, 10))
}

// servingListener finds the kvgate listener, among ls, that serves a
// Gateway listener: by adapt's name for it (gateway-listener, or with the
// namespace when names collide), else by its address (listeners sharing
// an address share a kvgate listener).
func servingListener(ls []config.Listener, ns, gw, l, addr string) (config.Listener, bool) {
	name := gw + "-" + l
	for _, r := range ls {
		if r.Name == name || strings.HasPrefix(r.Name, ns+"-"+name) {
			return r, true
		}
	}
	for _, r := range ls {
		if r.Address == addr {
			return r, true
		}
	}
	return config.Listener{}, false
}

// listenerChange says how a running listener differs from the one the
// cluster now asks for.
func listenerChange(run, want config.Listener) string {
	scheme := func(l config.Listener) string {
		if l.TLS != nil {
			return "HTTPS"
		}
		return "HTTP"
	}
	var out []string
	if run.Address != want.Address {
		out = append(out, "on "+run.Address+", not "+want.Address)
	}
	switch {
	case (run.TLS == nil) != (want.TLS == nil):
		out = append(out, "as "+scheme(run)+", not "+scheme(want))
	case run.TLS != nil && !reflect.DeepEqual(run.TLS, want.TLS):
		out = append(out, "with the certificate Secret it named then")
	}
	if !slices.Equal(run.Protocols, want.Protocols) {
		out = append(out, "speaking "+strings.Join(run.Protocols, ", ")+", not "+strings.Join(want.Protocols, ", "))
	}
	if len(out) == 0 {
		out = append(out, "with other settings")
	}
	return strings.Join(out, "; ")
}

// reportedHosts are the addresses reported for a listener bound to host:
// host itself, or Options.Addresses when it is every address.
func (c *Controller) reportedHosts(host string) []string {
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return c.opts.Addresses
	}
	return []string{host}
}

func joinWarnings(ws []adapt.Warning) string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = strings.TrimPrefix(w.String(), w.Resource.String()+": ")
	}
	return strings.Join(out, "; ")
}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return runtime.DeepCopyJSONValue(m).(map[string]any)
}

// putStatus writes the status build gives obj when it differs from the
// one obj has: compared first with the cached object, then with a fresh
// read (the cache may not have seen the last write yet).
func (c *Controller) putStatus(ctx context.Context, key string, obj map[string]any, build statusFunc) {
	now := time.Now().UTC().Format(time.RFC3339)
	if reflect.DeepEqual(build(obj, now), asMap(obj["status"])) || ctx.Err() != nil {
		return
	}
	in := c.informer(key)
	if in == nil {
		return
	}
	ns, name := str(obj, "metadata", "namespace"), str(obj, "metadata", "name")
	what := in.spec.kind + " " + strings.TrimPrefix(ref(ns, name), "/")
	res := c.dyn.Resource(in.gvr)
	var ri interface {
		Get(context.Context, string, metav1.GetOptions, ...string) (*unstructured.Unstructured, error)
		UpdateStatus(context.Context, *unstructured.Unstructured, metav1.UpdateOptions) (*unstructured.Unstructured, error)
	} = res
	if ns != "" {
		ri = res.Namespace(ns)
	}
	cur, err := ri.Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		next := build(cur.Object, now)
		if reflect.DeepEqual(next, asMap(cur.Object["status"])) {
			return
		}
		cur.Object["status"] = next
		_, err = ri.UpdateStatus(ctx, cur, metav1.UpdateOptions{FieldManager: "kvgate"})
		if err == nil {
			c.statusWrites.Add(1)
			c.log.Debug("kubernetes: status written", "object", what)
			return
		}
	}
	switch {
	case ctx.Err() != nil:
	case apierrors.IsNotFound(err):
		// deleted meanwhile: nothing to report on
	case apierrors.IsConflict(err):
		c.markStatus() // changed meanwhile: build again from the new one
	case apierrors.IsForbidden(err):
		c.once("status forbidden "+what, func() {
			c.log.Warn("kubernetes: status not written: forbidden (grant kvgate update on "+in.spec.resource+"/status)", "object", what, "err", err.Error())
		})
	default:
		c.once("status "+what+" "+err.Error(), func() {
			c.log.Warn("kubernetes: status not written; trying again on the next change", "object", what, "err", err.Error())
		})
	}
}
