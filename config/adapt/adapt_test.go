package adapt

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kvgate/kvgate/config"
)

func TestIntersectHosts(t *testing.T) {
	tests := []struct {
		listener string
		route    []string
		want     []string
		ok       bool
	}{
		{"", nil, nil, true},
		{"", []string{"a.example.com"}, []string{"a.example.com"}, true},
		{"a.example.com", nil, []string{"a.example.com"}, true},
		{"*.example.com", []string{"a.example.com", "b.other.org"}, []string{"a.example.com"}, true},
		{"a.example.com", []string{"*.example.com"}, []string{"a.example.com"}, true},
		{"*.example.com", []string{"*.a.example.com"}, []string{"*.a.example.com"}, true},
		{"*.example.com", []string{"example.com"}, nil, false},
		{"a.example.com", []string{"b.example.com"}, nil, false},
	}
	for _, tt := range tests {
		got, ok := intersectHosts(tt.listener, tt.route)
		if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("intersectHosts(%q, %q) = %q, %v; want %q, %v", tt.listener, tt.route, got, ok, tt.want, tt.ok)
		}
	}
}

func TestGroupAttachments(t *testing.T) {
	got := groupAttachments([]attachment{
		{listener: "a", hosts: []string{"x.com"}},
		{listener: "b", hosts: []string{"y.com"}},
		{listener: "a", hosts: []string{"y.com"}},
		{listener: "c", hosts: []string{"y.com", "x.com"}},
		{listener: "d", hosts: nil},
		{listener: "d", hosts: []string{"z.com"}},
	})
	want := []routeGroup{
		{listeners: []string{"a", "c"}, hosts: []string{"x.com", "y.com"}},
		{listeners: []string{"b"}, hosts: []string{"y.com"}},
		{listeners: []string{"d"}, hosts: nil},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("groupAttachments = %+v, want %+v", got, want)
	}
}

func TestWithPorts(t *testing.T) {
	got := withPorts([]string{"10.0.0.1", "10.0.0.2:9000", "fd00::1", "[fd00::2]", "10.0.0.1"}, []int{8000, 8001})
	want := []string{"10.0.0.1:8000", "10.0.0.1:8001", "10.0.0.2:9000", "[fd00::1]:8000", "[fd00::1]:8001", "[fd00::2]:8000", "[fd00::2]:8001"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("withPorts = %q, want %q", got, want)
	}
}

func TestFlags(t *testing.T) {
	var o Options
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	RegisterFlags(fs, &o)
	err := fs.Parse([]string{"--endpoints", "p=10.0.0.1, 10.0.0.2:80", "--endpoints", "p=10.0.0.3",
		"--cert", "ns/s=c.pem,k.pem", "--labels", "p=app=x,tier=", "--listen", "gw-http=127.0.0.1:1", "--bind", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	want := Options{
		Endpoints: map[string][]string{"p": {"10.0.0.1", "10.0.0.2:80", "10.0.0.3"}},
		Certs:     map[string]CertFiles{"ns/s": {"c.pem", "k.pem"}},
		Labels:    map[string]map[string]string{"p": {"app": "x", "tier": ""}},
		Listen:    map[string]string{"gw-http": "127.0.0.1:1"},
		Bind:      "127.0.0.1",
	}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("options = %+v\nwant %+v", o, want)
	}
	for _, bad := range [][]string{{"--endpoints", "p"}, {"--endpoints", "=a"}, {"--cert", "s=only-one"}, {"--labels", "p=novalue"}, {"--listen", "x="}} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(new(strings.Builder))
		RegisterFlags(fs, &Options{})
		if err := fs.Parse(bad); err == nil || !strings.Contains(err.Error(), "write it as") {
			t.Errorf("%q: err = %v, want a message saying how to write it", bad, err)
		}
	}
}

func TestIsManifest(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"listeners: [{name: a, address: 127.0.0.1:1}]\n", false},
		{"apiVersion: v1\nkind: Service\n", true},
		{"# c\n---\nfoo: 1\n---\napiVersion: v1\nkind: List\nitems: []\n", true},
		{"kind: Gateway\n", false},
		{"apiVersion: [\n", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsManifest([]byte(tt.in)); got != tt.want {
			t.Errorf("IsManifest(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestLoadAny(t *testing.T) {
	dir := t.TempDir()
	native := filepath.Join(dir, "native.yaml")
	os.WriteFile(native, config.DefaultYAML, 0o644)
	c, warns, err := LoadAny(native, Options{})
	if err != nil || warns != nil || len(c.Pools) == 0 {
		t.Fatalf("native: %v, %v, %v", c, warns, err)
	}

	c, warns, err = LoadAny(filepath.Join("testdata", "inferencepool-v1alpha2.yaml"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || c.Pools[0].Inference == nil || c.Pools[0].Inference.Picker != config.DefaultPicker {
		t.Errorf("manifest: warnings %v, pools %+v", warns, c.Pools)
	}

	_, warns, err = LoadAny(filepath.Join("testdata", "no-endpoints.yaml"), Options{})
	var ae *Error
	if !errors.As(err, &ae) || ae.Resource.Kind != "InferencePool" || ae.Resource.Name != "lonely" || len(warns) == 0 {
		t.Errorf("no endpoints: err %v (%T), warnings %v", err, err, warns)
	}

	_, _, err = LoadAny(filepath.Join(dir, "absent.yaml"), Options{})
	var ce *config.Errors
	if !errors.As(err, &ce) {
		t.Errorf("absent file: err %v (%T), want the native loader's *config.Errors", err, err)
	}
}

func TestLoadFiles(t *testing.T) {
	// The same objects split over two files adapt like one file.
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("testdata", "inferencepool-v1alpha2.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(string(data), "\n---\n", 2)
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	os.WriteFile(a, []byte(parts[0]), 0o644)
	os.WriteFile(b, []byte(parts[1]), 0o644)
	r, err := Load(Options{}, a, b)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := Parse(data, "x", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if string(r.YAML) != string(whole.YAML) {
		t.Errorf("two files:\n%s\none file:\n%s", r.YAML, whole.YAML)
	}
	if _, err := Load(Options{}, filepath.Join(dir, "absent.yaml")); err == nil || !strings.Contains(err.Error(), "cannot read") {
		t.Errorf("absent file: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a: [\n", "cannot parse the YAML"},
		{"apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec: {listeners: [{port: eighty}]}\n",
			"Gateway default/g: cannot decode"},
		{"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec: {rules: [{timeouts: {request: soon}}]}\n",
			"HTTPRoute default/r: cannot decode"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.in), "x.yaml", Options{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestMirrorAndSplitRoutes(t *testing.T) {
	in := `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  listeners:
    - {name: a, protocol: HTTP, port: 8080, hostname: a.example.com}
    - {name: b, protocol: HTTP, port: 8080, hostname: b.example.com}
    - {name: c, protocol: HTTP, port: 8081}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
    - backendRefs: [{name: s, port: 80}]
`
	r, err := Parse([]byte(in), "x.yaml", Options{Endpoints: map[string][]string{"s": {"127.0.0.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	// a and b share 0.0.0.0:8080 (one kvgate listener answering both
	// hostnames); c has no hostname, so it needs a route of its own.
	var got []string
	for _, rt := range r.Config.Routes {
		got = append(got, rt.Name+" "+strings.Join(rt.Listeners, ",")+" "+strings.Join(rt.Hostnames, ","))
	}
	want := []string{"r-0-gw-a gw-a a.example.com,b.example.com", "r-0-gw-c gw-c "}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("routes = %q, want %q", got, want)
	}
	if len(r.Config.Listeners) != 2 || r.Config.Pools[0].Endpoints[0] != "127.0.0.1:80" {
		t.Errorf("listeners %+v pools %+v", r.Config.Listeners, r.Config.Pools)
	}
}

// TestListBomb: Lists whose items are aliases of Lists would multiply to
// 10^8 objects; the decoder stops at maxObjects instead.
func TestListBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: List\nanchors:\n  - &l0 {apiVersion: v1, kind: Service, metadata: {name: s}}\n")
	for i := 1; i < 8; i++ {
		prev := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d,", i-1), 10), ",")
		fmt.Fprintf(&b, "  - &l%d {apiVersion: v1, kind: List, items: [%s]}\n", i, prev)
	}
	b.WriteString("items: [" + strings.TrimSuffix(strings.Repeat("*l7,", 10), ",") + "]\n")
	_, err := Parse([]byte(b.String()), "bomb.yaml", Options{})
	if err == nil || !strings.Contains(err.Error(), "more than 10000 objects") {
		t.Fatalf("err = %v, want the object limit", err)
	}
}
