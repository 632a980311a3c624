package adapt

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/kvgate/kvgate/config"
	"gopkg.in/yaml.v3"
)

// resolveBackend returns the kvgate pool for a backendRef, or "" and why not.
func (a *adapter) resolveBackend(res Resource, path string, br *backendRef) (pool, why string) {
	group, kind := deref(br.Group, ""), deref(br.Kind, "Service")
	ns := br.Namespace
	if ns == "" {
		ns = res.Namespace
	}
	switch {
	case ns == res.Namespace:
	case a.opts.Live:
		if !a.granted(res, ns, group, kind, br.Name) {
			return "", fmt.Sprintf("no ReferenceGrant in namespace %s lets %s from namespace %s refer to %s %s/%s", ns, res.Kind, res.Namespace, kind, ns, br.Name)
		}
	default:
		a.warn(res, path+".namespace", "cross-namespace reference to %s/%s accepted without a ReferenceGrant check", ns, br.Name)
	}
	switch {
	case br.Name == "":
		return "", "no name"
	case (group == "" || group == "core") && kind == "Service":
		return a.servicePool(res, path, ns, br.Name, br.Port)
	case (group == groupInference || group == groupInferenceAlpha) && kind == "InferencePool":
		p, ok := a.ipools[ns+"/"+br.Name]
		if !ok {
			return "", fmt.Sprintf("InferencePool %s/%s is not in the input", ns, br.Name)
		}
		if br.Port != 0 {
			a.warn(res, path+".port", "an InferencePool is reached on its targetPorts; port ignored")
		}
		return p.name, ""
	}
	return "", fmt.Sprintf("backend kind %s (group %q) is not supported (Service or InferencePool)", kind, group)
}

// servicePool returns the pool <service>-<port> for a Service backend,
// creating it on first use. Endpoints come from --endpoints, then the
// Service's EndpointSlices, then cluster DNS (ExternalName or the Service name).
func (a *adapter) servicePool(res Resource, path, ns, name string, port int) (string, string) {
	svc := a.services[ns+"/"+name]
	var sp *servicePort
	if svc != nil {
		if port == 0 && len(svc.Spec.Ports) == 1 {
			port = svc.Spec.Ports[0].Port
		}
		for i := range svc.Spec.Ports {
			if svc.Spec.Ports[i].Port == port {
				sp = &svc.Spec.Ports[i]
			}
		}
		if sp == nil && port != 0 && svc.Spec.Type != "ExternalName" {
			return "", fmt.Sprintf("Service %s/%s has no port %d", ns, name, port)
		}
	}
	if port == 0 {
		return "", "a Service backend needs a port"
	}
	key := ns + "/" + name + "/" + strconv.Itoa(port)
	if p, ok := a.svcPools[key]; ok {
		return p.name, ""
	}
	target := port
	if sp != nil && sp.TargetPort.Kind == yaml.ScalarNode {
		if n, err := strconv.Atoi(sp.TargetPort.Value); err == nil {
			target = n
		}
	}
	want := name + "-" + strconv.Itoa(port)
	pool := config.Pool{Name: a.unique("pools", ns, want)}
	eps, flagged := a.flagEndpoints([]string{pool.Name, want, ns + "/" + name, name})
	switch {
	case flagged:
		pool.Endpoints = withPorts(eps, []int{target})
	case len(a.slices[ns+"/"+name]) > 0:
		pool.Endpoints = a.sliceEndpoints(ns, name, sp, target)
	}
	if len(pool.Endpoints) == 0 {
		switch {
		case svc != nil && svc.Spec.Type == "ExternalName" && svc.Spec.ExternalName != "":
			pool.DNS = net.JoinHostPort(svc.Spec.ExternalName, strconv.Itoa(port))
		case svc != nil && a.opts.Live:
			// No ready endpoint now: the pool waits for one (503 until then).
		case svc != nil:
			pool.DNS = net.JoinHostPort(name+"."+ns+".svc.cluster.local", strconv.Itoa(port))
			a.warn(res, path, "no endpoints for Service %s/%s: pool %s uses dns %s, which resolves only inside the cluster (and to one ClusterIP unless the Service is headless); on a bare VM pass --endpoints %s=ADDR,ADDR", ns, name, pool.Name, pool.DNS, pool.Name)
		default:
			a.used["pools"][pool.Name] = false
			return "", fmt.Sprintf("Service %s/%s is not in the input and no --endpoints %s=ADDR,... was given", ns, name, want)
		}
	}
	if sp != nil && sp.AppProtocol == "kubernetes.io/h2c" {
		pool.Protocol = "h2c"
	}
	info := &poolInfo{name: pool.Name, namespace: ns, selector: svcSelector(svc)}
	if len(info.selector) > 0 {
		info.from = "Service " + ns + "/" + name
	}
	info.labels = a.labels(info, []string{pool.Name, want, ns + "/" + name, name})
	a.svcPools[key] = info
	a.addPool(res, pool, info)
	return pool.Name, ""
}

func svcSelector(svc *serviceDoc) map[string]string {
	if svc == nil {
		return nil
	}
	return svc.Spec.Selector
}

// labels merges the --labels given for a pool over its selector. keys are
// the names --labels may use for the pool, most specific first, as for
// --endpoints: the kvgate pool name, then (for a Service) <service>-<port>,
// namespace/service and the Service name, or (for an InferencePool) its name
// and namespace/name. Where several are given, the more specific wins.
func (a *adapter) labels(info *poolInfo, keys []string) map[string]string {
	out := maps.Clone(info.selector)
	if out == nil {
		out = map[string]string{}
	}
	for i := len(keys) - 1; i >= 0; i-- {
		if l, ok := a.opts.Labels[keys[i]]; ok && !slices.Contains(info.flagKeys, keys[i]) {
			maps.Copy(out, l)
			info.flagKeys = append(info.flagKeys, keys[i])
			a.labelKeys[keys[i]] = true
		}
	}
	return out
}

// flagEndpoints returns the --endpoints of the first key given.
func (a *adapter) flagEndpoints(keys []string) ([]string, bool) {
	for _, k := range keys {
		if eps, ok := a.opts.Endpoints[k]; ok {
			return eps, true
		}
	}
	return nil, false
}

// withPorts gives every address without a port each of ports, and drops
// duplicates. An address without a port and no ports stays as it is (the
// validator then asks for host:port).
func withPorts(addrs []string, ports []int) []string {
	var out []string
	seen := make(map[string]bool, len(addrs))
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, ad := range addrs {
		ad = strings.TrimSpace(ad)
		if _, _, err := net.SplitHostPort(ad); err == nil || len(ports) == 0 {
			add(ad)
			continue
		}
		for _, p := range ports {
			add(net.JoinHostPort(strings.Trim(ad, "[]"), strconv.Itoa(p)))
		}
	}
	return out
}

// sliceEndpoints reads the ready addresses of a Service's EndpointSlices on
// the port that serves Service port sp (matched by port name).
func (a *adapter) sliceEndpoints(ns, svc string, sp *servicePort, target int) []string {
	n := 0
	for _, s := range a.slices[ns+"/"+svc] {
		n += len(s.Endpoints)
	}
	// One list and one set for all slices (a Service may have 10,000
	// endpoints): what withPorts does for each address, without a set each.
	out := make([]string, 0, n)
	seen := make(map[string]bool, n)
	for _, s := range a.slices[ns+"/"+svc] {
		port := 0
		for _, p := range s.Ports {
			pn := deref(p.Name, "")
			if p.Port != nil && (sp == nil && len(s.Ports) == 1 || sp != nil && pn == sp.Name) {
				port = *p.Port
			}
		}
		if port == 0 {
			port = target
		}
		ps := strconv.Itoa(port)
		for _, ep := range s.Endpoints {
			if !ep.Conditions.usable() {
				continue
			}
			for _, ad := range ep.Addresses {
				ad = strings.TrimSpace(ad)
				// no colon: an IPv4 address or a name, without a port (and
				// without the error SplitHostPort would allocate to say so)
				if !strings.Contains(ad, ":") {
					ad = ad + ":" + ps
				} else if _, _, err := net.SplitHostPort(ad); err != nil {
					ad = net.JoinHostPort(strings.Trim(ad, "[]"), ps)
				}
				if !seen[ad] {
					seen[ad] = true
					out = append(out, ad)
				}
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// selectedEndpoints finds the addresses of the pods a label selector picks,
// through Services in the same namespace with exactly that selector.
func (a *adapter) selectedEndpoints(ns string, selector map[string]string, ports []int) []string {
	if len(selector) == 0 {
		return nil
	}
	var out []string
	for key, svc := range a.services {
		if !strings.HasPrefix(key, ns+"/") || !maps.Equal(svc.Spec.Selector, selector) {
			continue
		}
		for _, s := range a.slices[key] {
			for _, ep := range s.Endpoints {
				if !ep.Conditions.usable() {
					continue
				}
				for _, ad := range ep.Addresses {
					out = append(out, withPorts([]string{ad}, ports)...)
				}
			}
		}
	}
	slices.Sort(out)
	return withPorts(out, nil)
}

// granted reports whether a ReferenceGrant in namespace ns lets an object of
// res's kind and namespace refer to the named object of group and kind
// there (Gateway API: the grant lives in the referent's namespace).
func (a *adapter) granted(res Resource, ns, group, kind, name string) bool {
	if group == "core" {
		group = ""
	}
	for _, g := range a.grants[ns] {
		from := slices.ContainsFunc(g.Spec.From, func(f grantFrom) bool {
			return f.Group == groupGateway && f.Kind == res.Kind && f.Namespace == res.Namespace
		})
		to := slices.ContainsFunc(g.Spec.To, func(t grantTo) bool {
			tg := t.Group
			if tg == "core" {
				tg = ""
			}
			return tg == group && t.Kind == kind && (t.Name == nil || *t.Name == "" || *t.Name == name)
		})
		if from && to {
			return true
		}
	}
	return false
}
