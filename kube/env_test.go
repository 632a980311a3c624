package kube

// The test environment: a real etcd and kube-apiserver (built by
// hack/testbin/build.sh, never here), the Gateway API and Inference
// Extension CRDs from their Go modules, and model-server stand-ins in a
// network namespace of this process's own (the API server refuses loopback
// addresses in EndpointSlices).

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

const (
	testK8sVersion    = "v1.37.2"
	gatewayAPIModule  = "sigs.k8s.io/gateway-api@v1.6.3"
	inferenceModule   = "sigs.k8s.io/gateway-api-inference-extension@v1.6.2"
	backendsEnv       = "KVGATE_KUBE_TEST_BACKENDS" // set in the re-executed backend process
	backendsPerSubnet = 10                          // addresses 10.213.N.10 to .19
)

// env is the shared environment, set up once by TestMain.
var env struct {
	rest  *rest.Config
	dyn   dynamic.Interface
	ips   []string // backend addresses, in the network namespace
	ports []int    // each address serves on every port
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

func TestMain(m *testing.M) {
	if addrs := os.Getenv(backendsEnv); addrs != "" {
		os.Exit(serveBackends(addrs))
	}
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "kube tests: "+format+"\n", a...)
		return 1
	}
	bin, err := testbinDir()
	if err != nil {
		return fail("%v", err)
	}
	if os.Geteuid() != 0 {
		return fail("the tests run model-server stand-ins in a network namespace they create (the API server refuses loopback addresses in EndpointSlices): run them as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fail("the ip command (iproute2) is missing: apt-get install iproute2")
	}
	tmp, err := os.MkdirTemp("", "kvgate-kube-test-")
	if err != nil {
		return fail("%v", err)
	}
	cleanups = append(cleanups, func() { _ = os.RemoveAll(tmp) })

	ns, err := newNetns()
	if ns != nil {
		cleanups = append(cleanups, ns.delete)
	}
	if err != nil {
		return fail("network namespace: %v", err)
	}
	stopBackends, err := startBackends(ns)
	if err != nil {
		return fail("backends: %v", err)
	}
	cleanups = append(cleanups, stopBackends)

	start := time.Now()
	stop, err := startAPIServer(bin, tmp)
	if stop != nil {
		cleanups = append(cleanups, stop)
	}
	if err != nil {
		return fail("%v", err)
	}
	if err := installCRDs(); err != nil {
		return fail("CRDs: %v", err)
	}
	fmt.Fprintf(os.Stderr, "kube tests: etcd, kube-apiserver %s and CRDs ready in %s\n", testK8sVersion, time.Since(start).Round(time.Millisecond))
	return m.Run()
}

// testbinDir finds the kube-apiserver and etcd binaries: $KVGATE_TESTBIN,
// else the cache hack/testbin/build.sh fills, when it holds them.
func testbinDir() (string, error) {
	have := func(dir string) bool {
		for _, b := range []string{"kube-apiserver", "etcd"} {
			if st, err := os.Stat(filepath.Join(dir, b)); err != nil || st.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv("KVGATE_TESTBIN"); dir != "" {
		if !have(dir) {
			return "", fmt.Errorf("KVGATE_TESTBIN=%s holds no kube-apiserver and etcd: run hack/testbin/build.sh (it prints the directory to use)", dir)
		}
		return dir, nil
	}
	cache := os.Getenv("KVGATE_TESTBIN_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "kvgate-testbin")
	}
	dir := filepath.Join(cache, testK8sVersion+"-"+runtime.Version())
	if !have(dir) {
		return "", fmt.Errorf("no kube-apiserver and etcd: run hack/testbin/build.sh once (about 15 minutes cold; it caches them in %s), or set KVGATE_TESTBIN to their directory", dir)
	}
	return dir, nil
}

// freePort returns a loopback port nothing listens on now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p, nil
}

// startProcess runs a binary with its output in logFile; stop ends it
// (SIGTERM, then SIGKILL after 5 s) and waits.
func startProcess(logFile, bin string, args ...string) (stop func(), err error) {
	out, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(done) }()
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}, nil
}

// startAPIServer starts etcd and kube-apiserver and waits (bounded) for
// the API server's /readyz; it sets env.rest and env.dyn.
func startAPIServer(bin, tmp string) (func(), error) {
	var stops []func()
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	cp, err1 := freePort()
	pp, err2 := freePort()
	sp, err3 := freePort()
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + cp
	stop, err := startProcess(filepath.Join(tmp, "etcd.log"), filepath.Join(bin, "etcd"),
		"--name=kvgate-test", "--data-dir="+filepath.Join(tmp, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls=http://127.0.0.1:"+pp, "--initial-advertise-peer-urls=http://127.0.0.1:"+pp,
		"--initial-cluster=kvgate-test=http://127.0.0.1:"+pp,
		"--unsafe-no-fsync", "--log-level=error")
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	stops = append(stops, stop)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return stopAll, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return stopAll, err
	}
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	token := hex.EncodeToString(tok)
	files := map[string][]byte{
		"sa.key":     pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		"sa.pub":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		"tokens.csv": []byte(token + ",kvgate-test-admin,kvgate-test-admin,\"system:masters\"\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o600); err != nil {
			return stopAll, err
		}
	}
	stop, err = startProcess(filepath.Join(tmp, "kube-apiserver.log"), filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+sp,
		"--endpoint-reconciler-type=none",
		"--cert-dir="+filepath.Join(tmp, "certs"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+filepath.Join(tmp, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(tmp, "sa.key"),
		"--token-auth-file="+filepath.Join(tmp, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--disable-admission-plugins=ServiceAccount",
		"--service-cluster-ip-range=10.96.0.0/16",
	)
	if err != nil {
		return stopAll, fmt.Errorf("kube-apiserver: %w", err)
	}
	stops = append(stops, stop)

	env.rest = &rest.Config{
		Host:            "https://127.0.0.1:" + sp,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             100, Burst: 200,
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(90 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, env.rest.Host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(tmp, "kube-apiserver.log"))
			return stopAll, fmt.Errorf("kube-apiserver not ready after 90 s; its log ends:\n%s", tail(string(log), 3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	env.dyn, err = dynamic.NewForConfig(env.rest)
	return stopAll, err
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// moduleDir is the directory of a module version in the module cache
// (downloaded through the module proxy when it is not there yet).
func moduleDir(modVersion string) (string, error) {
	out, err := exec.Command("go", "mod", "download", "-json", modVersion).Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w", modVersion, err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %v %s", modVersion, err, m.Error)
	}
	return m.Dir, nil
}

// installCRDs applies the Gateway API standard CRDs and the Inference
// Extension's CRDs, and waits until each is established.
func installCRDs() error {
	gw, err := moduleDir(gatewayAPIModule)
	if err != nil {
		return err
	}
	inf, err := moduleDir(inferenceModule)
	if err != nil {
		return err
	}
	var names []string
	for _, dir := range []string{filepath.Join(gw, "config/crd/standard"), filepath.Join(inf, "config/crd/bases")} {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			return err
		}
		for _, f := range files {
			n, err := applyCRDFile(f)
			if err != nil {
				return err
			}
			names = append(names, n...)
		}
	}
	return waitEstablished(names)
}

// applyCRDFile creates the CRDs in a YAML file (other kinds are skipped).
func applyCRDFile(file string) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(data)), 4096)
	var names []string
	for range 100 {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return names, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if obj["kind"] != "CustomResourceDefinition" {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		if _, err := env.dyn.Resource(crdGVR).Create(context.Background(), u, createOpts); err != nil {
			return nil, fmt.Errorf("%s: create %s: %w", file, u.GetName(), err)
		}
		names = append(names, u.GetName())
	}
	return nil, fmt.Errorf("%s: too many documents", file)
}

// waitEstablished waits (bounded) for CRDs to be served.
func waitEstablished(names []string) error {
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range names {
		for {
			u, err := env.dyn.Resource(crdGVR).Get(context.Background(), n, getOpts)
			if err == nil && established(u.Object) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("CRD %s not established after 30 s (%v)", n, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

func established(o map[string]any) bool {
	for _, c := range list(o, "status", "conditions") {
		m := asMap(c)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// netns is the test's network namespace: a veth pair whose namespace side
// carries the backend addresses 10.213.N.10 to .19.
type netns struct {
	name, host string
	subnet     int
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newNetns creates the namespace and the veth pair, with a /24 no route
// of this machine uses yet. The returned netns is deleted by delete even
// when setting it up failed half-way.
func newNetns() (*netns, error) {
	sweepStaleNetns()
	pid := os.Getpid()
	n := &netns{name: fmt.Sprintf("kvgt-%d", pid), host: fmt.Sprintf("kvh%d", pid)}
	peer := fmt.Sprintf("kvn%d", pid)
	for i := range 200 {
		s := (pid+i)%200 + 20
		out, _ := exec.Command("ip", "-4", "route", "show", fmt.Sprintf("10.213.%d.0/24", s)).Output()
		if len(strings.TrimSpace(string(out))) == 0 {
			n.subnet = s
			break
		}
	}
	if n.subnet == 0 {
		return nil, errors.New("no free 10.213.N.0/24 subnet")
	}
	if err := run("ip", "netns", "add", n.name); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"ip", "link", "add", n.host, "type", "veth", "peer", "name", peer, "netns", n.name},
		{"ip", "addr", "add", fmt.Sprintf("10.213.%d.1/24", n.subnet), "dev", n.host},
		{"ip", "link", "set", n.host, "up"},
		{"ip", "-n", n.name, "link", "set", "lo", "up"},
		{"ip", "-n", n.name, "link", "set", peer, "up"},
	}
	for i := range backendsPerSubnet {
		steps = append(steps, []string{"ip", "-n", n.name, "addr", "add", fmt.Sprintf("10.213.%d.%d/24", n.subnet, 10+i), "dev", peer})
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			return n, err
		}
	}
	for i := range backendsPerSubnet {
		env.ips = append(env.ips, fmt.Sprintf("10.213.%d.%d", n.subnet, 10+i))
	}
	env.ports = []int{8000, 8001}
	return n, nil
}

// sweepStaleNetns deletes the namespaces (and veth pairs) of earlier test
// processes that died without their cleanup (a panic skips TestMain's).
func sweepStaleNetns() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		pid, ok := strings.CutPrefix(name, "kvgt-")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(pid); err != nil || n == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); err == nil {
			continue // its process still runs
		}
		(&netns{name: name, host: "kvh" + pid}).delete()
		fmt.Fprintf(os.Stderr, "kube tests: deleted network namespace %s left by a test process that died\n", name)
	}
}

// delete removes the veth pair (both ends) and the namespace.
func (n *netns) delete() {
	_ = run("ip", "link", "del", n.host)
	_ = run("ip", "netns", "del", n.name)
}

// startBackends re-executes the test binary inside the namespace, where
// it serves every backend address (TestMain sees backendsEnv); it returns
// once they listen. The child exits when its stdin closes, so it cannot
// outlive the tests.
func startBackends(n *netns) (func(), error) {
	var addrs []string
	for _, ip := range env.ips {
		for _, p := range env.ports {
			addrs = append(addrs, net.JoinHostPort(ip, strconv.Itoa(p)))
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("ip", "netns", "exec", n.name, self, "-test.run=^$")
	cmd.Env = append(os.Environ(), backendsEnv+"="+strings.Join(addrs, ","))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("backend process said %q", line)
		}
		ready <- err
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case err := <-ready:
		if err != nil {
			stop()
			return nil, err
		}
	case <-time.After(30 * time.Second):
		stop()
		return nil, errors.New("backends did not start in 30 s")
	}
	return stop, nil
}

// serveBackends is the re-executed process: an HTTP server on each
// address that answers with that address (/), a slow event stream
// (/stream?n=N&ms=M), and a vLLM-like metrics page (/metrics). A JSON
// body's model comes back in X-Model.
func serveBackends(list string) int {
	for _, addr := range strings.Split(list, ",") {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "backend:", err)
			return 1
		}
		go func() { _ = http.Serve(ln, backendHandler(addr)) }()
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin) // until the tests end
	return 0
}

func backendHandler(addr string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "vllm:num_requests_waiting 0\nvllm:num_requests_running 0\nvllm:kv_cache_usage_perc 0\n")
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		n, ms = min(max(n, 1), 1000), min(max(ms, 1), 1000)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Backend", addr)
		fl, _ := w.(http.Flusher)
		for i := range n {
			fmt.Fprintf(w, "data: %d\n\n", i)
			if fl != nil {
				fl.Flush()
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Duration(ms) * time.Millisecond):
			}
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Model string `json:"model"`
		}
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Backend", addr)
		if body.Model != "" {
			w.Header().Set("X-Model", body.Model) // the model the proxy asked for
		}
		fmt.Fprint(w, addr)
	})
	return mux
}
