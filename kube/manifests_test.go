package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/restmapper"
)

// manifestFiles are the rendered manifests (deploy/manifests/generate.sh)
// and kinds each must hold, so that an empty or cut-short file fails too.
var manifestFiles = map[string][]string{
	"kvgate.yaml":            {"ConfigMap", "DaemonSet", "Service", "ServiceAccount"},
	"kvgate-kubernetes.yaml": {"ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet", "GatewayClass", "Role", "RoleBinding", "Service", "ServiceAccount"},
}

// TestManifestsServerDryRun has the real kube-apiserver (with the Gateway
// API and Inference Extension CRDs the harness installs) accept every object
// of deploy/manifests/*.yaml: each is created with dryRun=All and strict
// field validation, which runs the server's defaulting, validation
// (built-in and CRD schemas) and admission without storing anything. Only
// the objects' namespace is created for real. Every refusal is reported
// with the object's kind and name and the server's message.
func TestManifestsServerDryRun(t *testing.T) {
	dir := filepath.Join("..", "deploy", "manifests")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	for name := range manifestFiles {
		if !slices.Contains(names, name) {
			t.Errorf("%s is missing from %s: run deploy/manifests/generate.sh", name, dir)
		}
	}
	for _, name := range names {
		if _, ok := manifestFiles[name]; !ok {
			t.Errorf("%s/%s: not known to this test: add the kinds it must hold to manifestFiles", dir, name)
		}
	}

	dc, err := discovery.NewDiscoveryClientForConfig(env.rest)
	if err != nil {
		t.Fatal(err)
	}
	mapper := &discoveryMapper{dc: dc}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			objs, err := decodeManifests(string(data))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var kinds []string
			for _, u := range objs {
				what := u.GetKind() + " " + strings.TrimPrefix(u.GetNamespace()+"/"+u.GetName(), "/")
				if err := dryRunCreate(t, mapper, u); err != nil {
					t.Errorf("%s: %s refused: %v", name, what, err)
					continue
				}
				t.Logf("%s: %s accepted", name, what)
				kinds = append(kinds, u.GetKind())
			}
			for _, k := range manifestFiles[name] {
				if !slices.Contains(kinds, k) {
					t.Errorf("%s: no %s was accepted (want one at least)", name, k)
				}
			}
		})
	}
}

// decodeManifests decodes a YAML stream into its objects (empty documents
// are skipped).
func decodeManifests(docs string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(docs), 4096)
	var out []*unstructured.Unstructured
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", len(out)+1, err)
		}
		if len(obj) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		if u.GetKind() == "" || u.GetAPIVersion() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("document %d: no kind, apiVersion or metadata.name", len(out)+1)
		}
		out = append(out, u)
	}
}

// discoveryMapper maps kinds to resources through the API server's
// discovery, read again once when a kind is not found (a CRD just
// established may be missing from an earlier read).
type discoveryMapper struct {
	dc     discovery.DiscoveryInterface
	mapper meta.RESTMapper
}

func (m *discoveryMapper) mapping(u *unstructured.Unstructured) (*meta.RESTMapping, error) {
	gvk := u.GroupVersionKind()
	for fresh := false; ; fresh = true {
		if m.mapper == nil || fresh {
			groups, err := restmapper.GetAPIGroupResources(m.dc)
			if err != nil {
				return nil, fmt.Errorf("discovery: %w", err)
			}
			m.mapper = restmapper.NewDiscoveryRESTMapper(groups)
		}
		mp, err := m.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err == nil || fresh || !meta.IsNoMatchError(err) {
			if meta.IsNoMatchError(err) {
				return nil, fmt.Errorf("the API server serves no %s (is its CRD installed?): %w", gvk, err)
			}
			return mp, err
		}
	}
}

// dryRunCreate creates u with dryRun=All; its namespace is created for
// real first when it does not exist (a dry run cannot create it).
func dryRunCreate(t *testing.T, m *discoveryMapper, u *unstructured.Unstructured) error {
	t.Helper()
	ctx := context.Background()
	mp, err := m.mapping(u)
	if err != nil {
		return err
	}
	res := env.dyn.Resource(mp.Resource)
	var ri interface {
		Create(context.Context, *unstructured.Unstructured, metav1.CreateOptions, ...string) (*unstructured.Unstructured, error)
	} = res
	if mp.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := u.GetNamespace()
		if ns == "" {
			return errors.New("namespaced, but names no namespace (kubectl apply would put it in the current namespace)")
		}
		ensureNamespace(t, ns)
		ri = res.Namespace(ns)
	} else if u.GetNamespace() != "" {
		return fmt.Errorf("cluster-scoped, but names the namespace %q", u.GetNamespace())
	}
	_, err = ri.Create(ctx, u, metav1.CreateOptions{
		DryRun:          []string{metav1.DryRunAll},
		FieldValidation: "Strict", // unknown or duplicate fields are refused, not warned about
		FieldManager:    "kvgate-manifests-test",
	})
	if err != nil {
		var st apierrors.APIStatus
		if errors.As(err, &st) {
			return fmt.Errorf("%s (%s)", st.Status().Message, st.Status().Reason)
		}
	}
	return err
}

// ensureNamespace creates a namespace unless it exists.
func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	gvr := gvrOf(&unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace"}})
	if _, err := env.dyn.Resource(gvr).Get(context.Background(), name, getOpts); err == nil {
		return
	} else if !apierrors.IsNotFound(err) {
		t.Fatalf("get namespace %s: %v", name, err)
	}
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}}
	if _, err := env.dyn.Resource(gvr).Create(context.Background(), ns, createOpts); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}
