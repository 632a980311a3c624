package kube

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/config/adapt"
	"github.com/kvgate/kvgate/internal/syncbuf"
	"github.com/kvgate/kvgate/proxy"
)

var (
	createOpts = metav1.CreateOptions{}
	getOpts    = metav1.GetOptions{}
	updateOpts = metav1.UpdateOptions{}
	deleteOpts = metav1.DeleteOptions{}
)

// resources maps the kinds the tests write to their resources.
var resources = map[string]string{
	"Namespace": "namespaces", "GatewayClass": "gatewayclasses", "Gateway": "gateways", "HTTPRoute": "httproutes",
	"ReferenceGrant": "referencegrants", "InferencePool": "inferencepools", "Service": "services",
	"EndpointSlice": "endpointslices", "Pod": "pods", "Secret": "secrets", "AuthorizationPolicy": "authorizationpolicies",
	"CustomResourceDefinition": "customresourcedefinitions", "InferenceModel": "inferencemodels",
}

func gvrOf(u *unstructured.Unstructured) schema.GroupVersionResource {
	gv, _ := schema.ParseGroupVersion(u.GetAPIVersion())
	return gv.WithResource(resources[u.GetKind()])
}

// apply creates or replaces every object of a YAML document stream; ns is
// the namespace of those that name none (cluster-scoped kinds keep none).
func apply(t testing.TB, ns, docs string) {
	t.Helper()
	ctx := context.Background()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(docs), 4096)
	for range 100 {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("apply: %v\n%s", err, docs)
		}
		if obj == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		res := env.dyn.Resource(gvrOf(u))
		var ri interface {
			Get(context.Context, string, metav1.GetOptions, ...string) (*unstructured.Unstructured, error)
			Create(context.Context, *unstructured.Unstructured, metav1.CreateOptions, ...string) (*unstructured.Unstructured, error)
			Update(context.Context, *unstructured.Unstructured, metav1.UpdateOptions, ...string) (*unstructured.Unstructured, error)
		} = res
		if u.GetKind() != "GatewayClass" && u.GetKind() != "Namespace" && u.GetKind() != "CustomResourceDefinition" {
			if u.GetNamespace() == "" {
				u.SetNamespace(ns)
			}
			ri = res.Namespace(u.GetNamespace())
		}
		cur, err := ri.Get(ctx, u.GetName(), getOpts)
		switch {
		case apierrors.IsNotFound(err):
			_, err = ri.Create(ctx, u, createOpts)
		case err == nil:
			u.SetResourceVersion(cur.GetResourceVersion())
			_, err = ri.Update(ctx, u, updateOpts)
		}
		if err != nil {
			t.Fatalf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	t.Fatal("apply: too many documents")
}

// remove deletes one object.
func remove(t testing.TB, gvr schema.GroupVersionResource, ns, name string) {
	t.Helper()
	err := env.dyn.Resource(gvr).Namespace(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("delete %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
}

var nsCount struct {
	sync.Mutex
	n int
}

// newNamespace creates a namespace of the test's own.
func newNamespace(t testing.TB) string {
	t.Helper()
	nsCount.Lock()
	nsCount.n++
	name := fmt.Sprintf("kvt-%d-%d", nsCount.n, time.Now().UnixNano()%100000)
	nsCount.Unlock()
	apply(t, "", "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+name+"}\n")
	return name
}

// gatewayClass creates a GatewayClass with a controllerName of the
// test's own, so that Gateways of other tests are not served, and returns
// both names.
func gatewayClass(t testing.TB) (class, controller string) {
	t.Helper()
	// The name is the test's and a count: with -count=N a later run must not
	// see the Gateways an earlier one left (no namespace controller here
	// ever deletes them).
	nsCount.Lock()
	nsCount.n++
	n := nsCount.n
	nsCount.Unlock()
	class = fmt.Sprintf("kvt-%s-%d", strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")), n)
	controller = "kvgate.dev/" + class
	apply(t, "", fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: %s}
spec: {controllerName: %s}
`, class, controller))
	return class, controller
}

// kvgate is a running Kubernetes-mode kvgate: the controller and the proxy
// it configures.
type kvgate struct {
	c    *Controller
	p    *proxy.Proxy
	logs *syncbuf.Buffer    // kvgate writes its log here while tests read it
	stop context.CancelFunc // stops the controller (and releases its Lease)
	// wrap, when set before serve, is what the controller runs against
	// instead of the proxy itself (benchmarks observe its calls).
	wrap func(*proxy.Proxy) Target
}

// startController starts a controller (not yet a proxy) for controller
// name ctrl; its logs go to the returned kvgate's buffer.
func startController(t testing.TB, ctrl string, tweak func(*Options)) *kvgate {
	t.Helper()
	k := &kvgate{logs: &syncbuf.Buffer{}}
	log := slog.New(slog.NewJSONHandler(k.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	base := &config.Config{AccessLog: config.AccessLog{Path: "off"}, Source: "test base"}
	config.Default(base)
	opts := Options{
		ControllerName: ctrl,
		Base:           base,
		Admin:          "127.0.0.1:0",
		Log:            log,
		Adapt:          adapt.Options{Listen: map[string]string{"gw-http": "127.0.0.1:0", "gw-https": "127.0.0.1:0"}},
		// A Lease per test (each test's controller name is its own), so
		// that one test's controller does not wait for another's.
		LeaderElection: LeaderElection{
			Name: strings.TrimPrefix(ctrl, "kvgate.dev/"), Namespace: "default",
			LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 200 * time.Millisecond,
		},
	}
	if tweak != nil {
		tweak(&opts)
	}
	c, err := New(env.rest, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	k.c, k.stop = c, cancel
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kvgate log:\n%s", tail(k.logs.String(), 6000))
		}
	})
	return k
}

// serve waits for the first configuration, starts the proxy on it and runs
// the controller against it, as kvgate run --kubernetes does.
func (k *kvgate) serve(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg, err := k.c.First(ctx)
	if err != nil {
		t.Fatalf("first configuration: %v (status: %v)", err, k.c.Status())
	}
	p, err := proxy.New(cfg, slog.New(slog.NewJSONHandler(k.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	p.SetLoader(k.c.Load)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	k.p = p
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	var target Target = p
	if k.wrap != nil {
		target = k.wrap(p)
	}
	go func() { k.c.Run(rctx, target); close(done) }()
	t.Cleanup(func() {
		stop()
		<-done
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(sctx)
	})
}

// start is startController then serve.
func start(t testing.TB, ctrl string, tweak func(*Options)) *kvgate {
	t.Helper()
	k := startController(t, ctrl, tweak)
	k.serve(t)
	return k
}

func (k *kvgate) url(listener, path string) string {
	l := k.p.Listener(listener)
	if l == nil {
		return ""
	}
	scheme := "http"
	if listener == "gw-https" {
		scheme = "https"
	}
	return scheme + "://" + l.Addr().String() + path
}

var client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 16,
}}

// get returns the status and body of one request.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// backendOf is the backend that answered a 200, or "<status>".
func backendOf(t *testing.T, url string) string {
	t.Helper()
	code, body := get(t, url)
	if code != 200 {
		return strconv.Itoa(code)
	}
	return body
}

// eventually polls cond every 20 ms until it holds or within passes, and
// returns how long it took.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// counts sends n requests and counts the backends that answered.
func counts(t *testing.T, url string, n int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for range n {
		out[backendOf(t, url)]++
	}
	return out
}

// only reports whether n requests in a row are all answered by want.
func only(t *testing.T, url, want string, n int) bool {
	t.Helper()
	for range n {
		if backendOf(t, url) != want {
			return false
		}
	}
	return true
}

// reloads is kvgate_config_reloads_total{result="ok"} from the admin listener.
func (k *kvgate) reloads(t *testing.T) int {
	t.Helper()
	_, body := get(t, "http://"+k.p.AdminAddr().String()+"/metrics")
	m := regexp.MustCompile(`kvgate_config_reloads_total\{result="ok"\} (\d+)`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no kvgate_config_reloads_total{result=\"ok\"} in /metrics")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func ep(ip string, port int) string { return fmt.Sprintf("%s:%d", ip, port) }

// service is a Service on port 80 to target port 8000 with one
// EndpointSlice listing endpoints (address → "ready", "notready",
// "terminating").
func service(name string, endpoints ...[2]string) string {
	var eps strings.Builder
	for _, e := range endpoints {
		ready, serving, term := "true", "true", "false"
		switch e[1] {
		case "notready":
			ready, serving = "false", "false"
		case "terminating":
			ready, term = "false", "true"
		}
		fmt.Fprintf(&eps, "- {addresses: [%s], conditions: {ready: %s, serving: %s, terminating: %s}}\n", e[0], ready, serving, term)
	}
	if len(endpoints) == 0 {
		eps.WriteString("[]\n")
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: %[1]s}
spec:
  selector: {app: %[1]s}
  ports: [{name: http, port: 80, targetPort: 8000}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: %[1]s-1, labels: {kubernetes.io/service-name: %[1]s}}
addressType: IPv4
ports: [{name: http, port: 8000, protocol: TCP}]
endpoints:
%[2]s---
`, name, eps.String())
}

// gateway is Gateway gw of class with an HTTP listener on 8080.
func gateway(class string) string {
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: %s
  listeners: [{name: http, port: 8080, protocol: HTTP}]
---
`, class)
}

// route is HTTPRoute name on gw sending / to Services by weight ("a=80").
func route(name string, backends ...string) string {
	var refs []string
	for _, b := range backends {
		svc, w, ok := strings.Cut(b, "=")
		if !ok {
			w = "1"
		}
		refs = append(refs, fmt.Sprintf("{name: %s, port: 80, weight: %s}", svc, w))
	}
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: %s}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [%s]
---
`, name, strings.Join(refs, ", "))
}
