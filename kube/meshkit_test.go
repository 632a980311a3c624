package kube

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kvgate/kvgate/config"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
)

// The mesh benchmark kit's manifests (benchmarks/mesh/manifests), rendered
// the way benchmarks/mesh/cluster.sh renders them: ${VAR} placeholders
// filled in, and in SPIRE mode two lines of kvgate-node.yaml swapped.
var (
	meshKitDir  = filepath.Join("..", "benchmarks", "mesh", "manifests")
	meshKitVars = map[string]string{
		"NS": "kvgate-mesh-test", "MESH_IMAGE": "localhost/kvgate-mesh:test", "CLIENT_NODE": "node-a",
		"SERVER_NODE": "node-b", "SERVER_NODE_IP": "10.213.0.2", "TRUST_DOMAIN": "cluster.local",
	}
	// meshKitChecked are the files the test API server can check (plain
	// Kubernetes objects and the Gateway API CRDs the harness installs), with
	// the kinds each must hold.
	meshKitChecked = map[string][]string{
		"workloads.yaml":                {"ServiceAccount", "Deployment", "Service"},
		"kvgate-node.yaml":              {"ServiceAccount", "ConfigMap", "DaemonSet"},
		"gateway-api/waypoint.yaml":     {"Gateway"},
		"gateway-api/canary-route.yaml": {"HTTPRoute"},
	}
	// meshKitThirdParty need Istio's or Linkerd's CRDs, which the test API
	// server does not have: they are rendered and decoded only.
	meshKitThirdParty = []string{"third-party/istio-authz-l4.yaml", "third-party/istio-authz-l7.yaml", "third-party/linkerd-authz.yaml"}
	// meshKitSPIRE are cluster.sh's substitutions for KVGATE_IDENTITY=spire.
	meshKitSPIRE = [][2]string{
		{"identity: {files: {dir: /run/svid}}", `identity: {workloadAPI: "unix:///run/svid/spire-agent.sock"}`},
		{"secret: {secretName: kvgate-svid}", "csi: {driver: csi.spiffe.io, readOnly: true}"},
	}
)

var placeholder = regexp.MustCompile(`\$\{([A-Za-z_]+)\}`)

// renderMeshKit fills in the placeholders of file; an unknown one fails the
// test (cluster.sh would refuse it too).
func renderMeshKit(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(meshKitDir, file))
	if err != nil {
		t.Fatal(err)
	}
	return placeholder.ReplaceAllStringFunc(string(data), func(m string) string {
		name := placeholder.FindStringSubmatch(m)[1]
		v, ok := meshKitVars[name]
		if !ok {
			t.Errorf("%s: placeholder %s is not one cluster.sh fills in (%v)", file, m, meshKitVars)
		}
		return v
	})
}

// TestMeshKitManifestsServerDryRun has the real kube-apiserver accept every
// object of the kit's own manifests (dryRun=All, strict field validation),
// kvgate-node.yaml in both identity modes; checks that the kvgate
// configuration inside it is valid; and that the third-party files render
// and decode. Every manifest file must be listed here.
func TestMeshKitManifestsServerDryRun(t *testing.T) {
	var all []string
	err := filepath.WalkDir(meshKitDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			rel, _ := filepath.Rel(meshKitDir, p)
			all = append(all, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		if _, ok := meshKitChecked[f]; !ok && !slices.Contains(meshKitThirdParty, f) {
			t.Errorf("%s/%s is not known to this test: add it to meshKitChecked (with its kinds) or meshKitThirdParty", meshKitDir, f)
		}
	}
	for f := range meshKitChecked {
		if !slices.Contains(all, f) {
			t.Errorf("%s/%s is missing", meshKitDir, f)
		}
	}

	// cluster.sh's render must fill in exactly the placeholders this test does.
	script, err := os.ReadFile(filepath.Join("..", "benchmarks", "mesh", "cluster.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for name := range meshKitVars {
		if !strings.Contains(string(script), `s|\${`+name+`}|`) {
			t.Errorf("cluster.sh's render does not fill in ${%s}: keep it in step with meshKitVars", name)
		}
	}

	dc, err := discovery.NewDiscoveryClientForConfig(env.rest)
	if err != nil {
		t.Fatal(err)
	}
	mapper := &discoveryMapper{dc: dc}
	check := func(t *testing.T, name, text string, wantKinds []string) {
		objs, err := decodeManifests(text)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var kinds []string
		for _, u := range objs {
			what := u.GetKind() + " " + u.GetNamespace() + "/" + u.GetName()
			if err := dryRunCreate(t, mapper, u); err != nil {
				t.Errorf("%s: %s refused: %v", name, what, err)
				continue
			}
			kinds = append(kinds, u.GetKind())
		}
		for _, k := range wantKinds {
			if !slices.Contains(kinds, k) {
				t.Errorf("%s: no %s was accepted (want one at least)", name, k)
			}
		}
	}
	for name, kinds := range meshKitChecked {
		t.Run(name, func(t *testing.T) { check(t, name, renderMeshKit(t, name), kinds) })
	}
	t.Run("kvgate-node.yaml with SPIRE", func(t *testing.T) {
		text := renderMeshKit(t, "kvgate-node.yaml")
		for _, s := range meshKitSPIRE {
			if !strings.Contains(text, s[0]) {
				t.Fatalf("kvgate-node.yaml lacks %q, which cluster.sh replaces in SPIRE mode: keep them in step", s[0])
			}
			text = strings.Replace(text, s[0], s[1], 1)
		}
		check(t, "kvgate-node.yaml (spire)", text, meshKitChecked["kvgate-node.yaml"])
	})
	t.Run("kvgate config", func(t *testing.T) {
		text := renderMeshKit(t, "kvgate-node.yaml")
		objs, err := decodeManifests(text)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range objs {
			if u.GetKind() != "ConfigMap" {
				continue
			}
			data, _, _ := unstructured.NestedString(u.Object, "data", "kvgate.yaml")
			if _, err := config.Parse([]byte(data), "kvgate-node.yaml ConfigMap kvgate.yaml"); err != nil {
				t.Errorf("the node proxy's configuration is refused: %v", err)
			}
			return
		}
		t.Error("kvgate-node.yaml has no ConfigMap")
	})
	for _, name := range meshKitThirdParty {
		t.Run(name, func(t *testing.T) {
			objs, err := decodeManifests(renderMeshKit(t, name))
			if err != nil || len(objs) == 0 {
				t.Fatalf("%s: %d objects, %v", name, len(objs), err)
			}
			for _, u := range objs {
				if u.GetNamespace() != meshKitVars["NS"] {
					t.Errorf("%s: %s %s is not in the benchmark's namespace", name, u.GetKind(), u.GetName())
				}
			}
		})
	}
}
