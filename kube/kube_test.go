package kube

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// kvgate waits for a Gateway of its class, serves it, and an HTTPRoute
// change reroutes within a second.
func TestHTTPRouteChangeReroutes(t *testing.T) {
	ns := newNamespace(t)
	class, ctrl := gatewayClass(t)
	a, b := env.ips[0], env.ips[1]
	apply(t, ns, service("a", [2]string{a, "ready"})+service("b", [2]string{b, "ready"})+route("chat", "a"))

	k := startController(t, ctrl, nil) // default debounce (100 ms) and max delay (1 s)
	first := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := k.c.First(ctx)
		first <- err
	}()
	eventually(t, 10*time.Second, "status names the missing Gateway", func() bool {
		err := k.c.Status()
		return err != nil && strings.Contains(err.Error(), "no Gateway of GatewayClass "+class)
	})
	apply(t, ns, gateway(class))
	if err := <-first; err != nil {
		t.Fatalf("first configuration after the Gateway appeared: %v", err)
	}
	k.serve(t)
	url := k.url("gw-http", "/")
	if got := backendOf(t, url); got != ep(a, 8000) {
		t.Fatalf("before the change: %s, want %s", got, ep(a, 8000))
	}

	apply(t, ns, route("chat", "b"))
	took := eventually(t, time.Second, "the route change reroutes to b", func() bool { return backendOf(t, url) == ep(b, 8000) })
	t.Logf("HTTPRoute change rerouted in %s", took.Round(time.Millisecond))
	if !only(t, url, ep(b, 8000), 20) {
		t.Errorf("after the change some requests still went elsewhere")
	}
}

// A weight change moves the split.
func TestWeightChangeMovesSplit(t *testing.T) {
	ns := newNamespace(t)
	class, ctrl := gatewayClass(t)
	a, b := env.ips[0], env.ips[1]
	apply(t, ns, gateway(class)+service("a", [2]string{a, "ready"})+service("b", [2]string{b, "ready"})+route("chat", "a=90", "b=10"))
	k := start(t, ctrl, func(o *Options) { o.Debounce, o.MaxDelay = 50*time.Millisecond, 300*time.Millisecond })
	url := k.url("gw-http", "/")
	const n = 200
	c := counts(t, url, n)
	if c[ep(a, 8000)] < n*70/100 || c[ep(b, 8000)] == 0 {
		t.Fatalf("90/10: %v", c)
	}
	apply(t, ns, route("chat", "a=10", "b=90"))
	eventually(t, 2*time.Second, "the new weights apply", func() bool { return counts(t, url, 20)[ep(b, 8000)] >= 12 })
	c = counts(t, url, n)
	if c[ep(b, 8000)] < n*70/100 || c[ep(a, 8000)] == 0 {
		t.Fatalf("10/90: %v", c)
	}
}

// An endpoint that goes not ready, terminating or away gets no new request
// within a second, and a stream in flight on it finishes; a new ready
// endpoint gets traffic; all of it without a reload (proxy.SetEndpoints).
func TestEndpointSliceReadiness(t *testing.T) {
	ns := newNamespace(t)
	class, ctrl := gatewayClass(t)
	x, y, z := env.ips[2], env.ips[3], env.ips[4]
	apply(t, ns, gateway(class)+service("s", [2]string{x, "ready"}, [2]string{y, "ready"}, [2]string{z, "notready"})+route("r", "s"))
	k := start(t, ctrl, nil)
	url := k.url("gw-http", "/")
	c := counts(t, url, 40)
	if c[ep(x, 8000)] == 0 || c[ep(y, 8000)] == 0 || c[ep(z, 8000)] != 0 {
		t.Fatalf("x and y ready, z not: %v", c)
	}
	reloads := k.reloads(t)

	// A slow stream on x: 20 events, 100 ms apart.
	var resp *http.Response
	for range 40 {
		r, err := client.Get(k.url("gw-http", "/stream?n=20&ms=100"))
		if err != nil {
			t.Fatal(err)
		}
		if r.Header.Get("X-Backend") == ep(x, 8000) {
			resp = r
			break
		}
		r.Body.Close()
	}
	if resp == nil {
		t.Fatal("no stream landed on x in 40 tries")
	}
	streamDone := make(chan string, 1)
	go func() {
		defer resp.Body.Close()
		var events []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "data: ") {
				events = append(events, strings.TrimPrefix(l, "data: "))
			}
		}
		streamDone <- strings.Join(events, ",")
	}()

	apply(t, ns, service("s", [2]string{x, "terminating"}, [2]string{y, "ready"}, [2]string{z, "notready"}))
	took := eventually(t, time.Second, "terminating x gets no new request", func() bool { return only(t, url, ep(y, 8000), 10) })
	t.Logf("not-ready endpoint out of rotation in %s", took.Round(time.Millisecond))
	select {
	case got := <-streamDone:
		want := "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,[DONE]"
		if got != want {
			t.Errorf("the stream in flight on x was cut: got events %s", got)
		}
	case <-time.After(5 * time.Second):
		t.Error("the stream in flight on x did not finish")
	}

	apply(t, ns, service("s", [2]string{x, "terminating"}, [2]string{y, "ready"}, [2]string{z, "ready"}))
	took = eventually(t, time.Second, "newly ready z gets traffic", func() bool { return counts(t, url, 10)[ep(z, 8000)] > 0 })
	t.Logf("new ready endpoint in rotation in %s", took.Round(time.Millisecond))

	apply(t, ns, service("s", [2]string{z, "ready"})) // x and y removed
	eventually(t, time.Second, "removed y gets no request", func() bool { return only(t, url, ep(z, 8000), 10) })

	apply(t, ns, service("s", [2]string{z, "notready"}))
	eventually(t, time.Second, "no ready endpoint: 503", func() bool { return backendOf(t, url) == "503" })

	if got := k.reloads(t); got != reloads {
		t.Errorf("endpoint changes reloaded the configuration %d times; want none (SetEndpoints)", got-reloads)
	}
	apply(t, ns, service("s", [2]string{y, "ready"}))
	eventually(t, time.Second, "y back", func() bool { return backendOf(t, url) == ep(y, 8000) })
}

// pod creates (or updates) a Pod with labels app=app and sets its status
// as a kubelet would: its address and Ready condition.
func pod(t *testing.T, ns, name, app, ip string, ready bool) {
	t.Helper()
	ctx := context.Background()
	res := env.dyn.Resource(podGVR).Namespace(ns)
	u, err := res.Get(ctx, name, getOpts)
	if err != nil {
		apply(t, ns, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, labels: {app: %s}}
spec:
  containers: [{name: vllm, image: vllm/vllm-openai}]
`, name, app))
		if u, err = res.Get(ctx, name, getOpts); err != nil {
			t.Fatal(err)
		}
	}
	status := "False"
	if ready {
		status = "True"
	}
	now := time.Now().UTC().Format(time.RFC3339)
	u.Object["status"] = map[string]any{
		"phase": "Running", "podIP": ip, "podIPs": []any{map[string]any{"ip": ip}},
		"conditions": []any{map[string]any{"type": "Ready", "status": status, "lastTransitionTime": now}},
	}
	if _, err := res.UpdateStatus(ctx, u, updateOpts); err != nil {
		t.Fatalf("pod %s status: %v", name, err)
	}
}

// complete sends one completion request and returns who answered.
func complete(t *testing.T, url, prompt string) string {
	t.Helper()
	return completion(t, url, "m", prompt, "X-Backend")
}

// completion sends one completion request for model and returns the
// reply's header (X-Backend: who answered; X-Model: the model it was asked
// for), or the status code when it is not 200.
func completion(t *testing.T, url, model, prompt, header string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"model": model, "prompt": prompt, "max_tokens": 1})
	resp, err := client.Post(url, "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Sprint(resp.StatusCode)
	}
	return resp.Header.Get(header)
}

// An InferencePool's endpoints are its ready pods on every target port
// (one per data-parallel rank); a pod that goes not ready leaves, a new one
// joins, and none ready answers 503.
func TestInferencePoolPods(t *testing.T) {
	ns := newNamespace(t)
	class, ctrl := gatewayClass(t)
	p1, p2, p3 := env.ips[5], env.ips[6], env.ips[7]
	app := "vllm-" + ns
	apply(t, ns, gateway(class)+fmt.Sprintf(`apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: vllm}
spec:
  selector: {matchLabels: {app: %s}}
  targetPorts: [{number: 8000}, {number: 8001}]
  endpointPickerRef: {name: epp, port: {number: 9002}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: llm}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{group: inference.networking.k8s.io, kind: InferencePool, name: vllm}]
`, app))
	pod(t, ns, "p1", app, p1, true)
	pod(t, ns, "p2", app, p2, true)
	pod(t, ns, "other", "not-"+app, p3, true) // not selected
	k := start(t, ctrl, nil)
	url := k.url("gw-http", "/v1/completions")
	seen := map[string]int{}
	for i := range 120 {
		seen[complete(t, url, fmt.Sprintf("prompt %d %s", i, strings.Repeat("x", i)))]++
	}
	for _, want := range []string{ep(p1, 8000), ep(p1, 8001), ep(p2, 8000), ep(p2, 8001)} {
		if seen[want] == 0 {
			t.Errorf("endpoint %s got no request: %v", want, seen)
		}
	}
	if len(seen) != 4 {
		t.Fatalf("want exactly the 4 endpoints of p1 and p2: %v", seen)
	}

	pod(t, ns, "p1", app, p1, false)
	eventually(t, time.Second, "not-ready p1 leaves", func() bool {
		for i := range 16 {
			if strings.HasPrefix(complete(t, url, fmt.Sprintf("after %d", i)), p1+":") {
				return false
			}
		}
		return true
	})
	pod(t, ns, "p2", app, p2, false)
	eventually(t, time.Second, "no ready pod: 503", func() bool { return complete(t, url, "none") == "503" })
	pod(t, ns, "p3", app, p3, true)
	eventually(t, time.Second, "new pod p3 joins", func() bool { return strings.HasPrefix(complete(t, url, "p3"), p3+":") })
}

const istioCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: authorizationpolicies.security.istio.io}
spec:
  group: security.istio.io
  names: {kind: AuthorizationPolicy, listKind: AuthorizationPolicyList, plural: authorizationpolicies, singular: authorizationpolicy}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

// A CRD that is not installed (Istio's) neither blocks start-up nor
// crashes: it is logged once by name, and watched once it is installed.
func TestMissingCRD(t *testing.T) {
	ns := newNamespace(t)
	class, ctrl := gatewayClass(t)
	apply(t, ns, gateway(class)+service("s", [2]string{env.ips[0], "ready"})+route("r", "s"))
	k := start(t, ctrl, func(o *Options) { o.Rediscover = 200 * time.Millisecond })
	url := k.url("gw-http", "/")
	if got := backendOf(t, url+"admin"); got != ep(env.ips[0], 8000) {
		t.Fatalf("without Istio's CRD: %s", got)
	}
	time.Sleep(600 * time.Millisecond) // three rediscovery passes
	for _, res := range []string{"authorizationpolicies.security.istio.io/v1", "inferencepools.inference.networking.x-k8s.io/v1alpha2"} {
		if n := strings.Count(k.logs.String(), `"resource":"`+res+`"`); n != 1 {
			t.Errorf("resource %s logged %d times as not installed, want once", res, n)
		}
	}

	apply(t, "", istioCRD)
	t.Cleanup(func() {
		_ = env.dyn.Resource(crdGVR).Delete(context.Background(), "authorizationpolicies.security.istio.io", deleteOpts)
	})
	if err := waitEstablished([]string{"authorizationpolicies.security.istio.io"}); err != nil {
		t.Fatal(err)
	}
	apply(t, ns, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-admin}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin"]}}]}]
`)
	eventually(t, 5*time.Second, "the policy applies once its CRD is installed", func() bool { return backendOf(t, url+"admin") == "403" })
	if got := backendOf(t, url); got != ep(env.ips[0], 8000) {
		t.Errorf("/ with the policy: %s", got)
	}
	if !strings.Contains(k.logs.String(), "resource now installed") {
		t.Errorf("installing the CRD was not logged")
	}
}

// selfSigned is a PEM certificate and key for localhost named cn.
func selfSigned(t *testing.T, cn string) (crt, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

func tlsSecret(t *testing.T, name, cn string) string {
	crt, key := selfSigned(t, cn)
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: %s}
type: kubernetes.io/tls
data: {tls.crt: %s, tls.key: %s}
---
`, name, base64.StdEncoding.EncodeToString(crt), base64.StdEncoding.EncodeToString(key))
}

// servedCN is the CommonName of the certificate a TLS listener serves.
func servedCN(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// An HTTPS listener serves the certificate of the Secret it names, read
// by name, and follows the Secret when it changes; a listener whose Secret
// is missing is left out.
func TestListenerCertificateFromSecret(t *testing.T) {
	ns := newNamespace(t)
	class, ctrl := gatewayClass(t)
	apply(t, ns, tlsSecret(t, "gw-cert", "first")+fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: %s
  listeners:
  - {name: https, port: 8443, protocol: HTTPS, tls: {certificateRefs: [{name: gw-cert}]}}
  - {name: other, port: 9443, protocol: HTTPS, tls: {certificateRefs: [{name: nowhere}]}}
---
`, class)+service("s", [2]string{env.ips[0], "ready"})+route("r", "s"))
	k := start(t, ctrl, func(o *Options) {
		o.SecretRefresh = 200 * time.Millisecond
		o.Adapt.Listen["gw-other"] = "127.0.0.1:0"
	})
	if k.p.Listener("gw-other") != nil {
		t.Errorf("the listener whose Secret is missing is served")
	}
	if !strings.Contains(k.logs.String(), "Secret "+ns+"/nowhere is missing") {
		t.Errorf("the missing Secret is not logged by name")
	}
	if code, body := get(t, k.url("gw-https", "/")); code != 200 || body != ep(env.ips[0], 8000) {
		t.Fatalf("over TLS: %d %s", code, body)
	}
	addr := k.p.Listener("gw-https").Addr().String()
	if cn := servedCN(t, addr); cn != "first" {
		t.Fatalf("served certificate %q, want first", cn)
	}
	apply(t, ns, tlsSecret(t, "gw-cert", "second"))
	eventually(t, 5*time.Second, "the rotated certificate is served", func() bool { return servedCN(t, addr) == "second" })
}

// A reference to another namespace needs a ReferenceGrant there.
func TestCrossNamespaceNeedsReferenceGrant(t *testing.T) {
	ns, other := newNamespace(t), newNamespace(t)
	class, ctrl := gatewayClass(t)
	apply(t, other, service("s", [2]string{env.ips[8], "ready"}))
	apply(t, ns, gateway(class)+service("local", [2]string{env.ips[0], "ready"})+fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /other}}]
    backendRefs: [{name: s, namespace: %s, port: 80}]
  - backendRefs: [{name: local, port: 80}]
`, other))
	k := start(t, ctrl, nil)
	url := k.url("gw-http", "/other")
	if got := backendOf(t, url); got != ep(env.ips[0], 8000) {
		t.Fatalf("without a grant /other went to %s; want the other rule's backend", got)
	}
	apply(t, other, fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: from-%[1]s}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: %[1]s}]
  to: [{group: "", kind: Service}]
`, ns))
	eventually(t, time.Second, "the grant lets the route reach the other namespace", func() bool { return backendOf(t, url) == ep(env.ips[8], 8000) })
}

// A state that does not translate keeps the running configuration and is
// logged once, naming the object; fixing it applies again.
func TestBadStateKeepsRunningConfig(t *testing.T) {
	ns := newNamespace(t)
	class, ctrl := gatewayClass(t)
	apply(t, ns, gateway(class)+service("a", [2]string{env.ips[0], "ready"})+service("b", [2]string{env.ips[1], "ready"})+route("r", "a"))
	k := start(t, ctrl, nil)
	url := k.url("gw-http", "/")
	bad := `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: broken}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{headers: [{type: RegularExpression, name: x-user, value: "(unclosed"}]}]
    backendRefs: [{name: b, port: 80}]
`
	apply(t, ns, bad+"---\n"+route("r", "b"))
	eventually(t, 2*time.Second, "the error is logged", func() bool {
		return strings.Contains(k.logs.String(), "keeping the running configuration")
	})
	if got := backendOf(t, url); got != ep(env.ips[0], 8000) {
		t.Errorf("with a broken route the running configuration changed: %s", got)
	}
	logs := k.logs.String()
	if !strings.Contains(logs, "HTTPRoute "+ns+"/broken") {
		t.Errorf("the log does not name HTTPRoute %s/broken:\n%s", ns, logs)
	}
	remove(t, schema.GroupVersionResource{Group: groupGateway, Version: "v1", Resource: "httproutes"}, ns, "broken")
	eventually(t, 2*time.Second, "fixed: the change applies", func() bool { return backendOf(t, url) == ep(env.ips[1], 8000) })
	if n := strings.Count(k.logs.String(), "keeping the running configuration"); n != 1 {
		t.Errorf("the error was logged %d times, want once", n)
	}
}

func TestTestbinMissingSaysWhatToRun(t *testing.T) {
	t.Setenv("KVGATE_TESTBIN", t.TempDir())
	_, err := testbinDir()
	if err == nil || !strings.Contains(err.Error(), "hack/testbin/build.sh") {
		t.Errorf("err = %v, want it to name hack/testbin/build.sh", err)
	}
}
