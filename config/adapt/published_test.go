package adapt

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kvgate/kvgate/config"
)

// adaptFile adapts a testdata manifest with the options of its flags line.
func adaptFile(t *testing.T, name string) (*Result, error) {
	t.Helper()
	path := filepath.Join("testdata", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(data, filepath.ToSlash(path), caseOptions(t, data))
}

func warningLines(r *Result) []string {
	var out []string
	if r != nil {
		for _, w := range r.Warnings {
			out = append(out, w.String())
		}
	}
	return out
}

// missingFrom returns the wanted substrings that no line holds.
func missingFrom(lines []string, want []string) []string {
	var missing []string
	for _, w := range want {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, w) }) {
			missing = append(missing, w)
		}
	}
	return missing
}

func findPool(c *config.Config, name string) *config.Pool {
	for i := range c.Pools {
		if c.Pools[i].Name == name {
			return &c.Pools[i]
		}
	}
	return nil
}

// InferencePools as articles publish them: one version's apiVersion with
// another version's field names. Each is read, with a warning that names the
// field at its own file:line; what cannot be read is still refused.
func TestPublishedInferencePools(t *testing.T) {
	tests := []struct {
		file      string
		endpoints map[string][]string // pool → endpoints; nil when adapting must fail
		warnings  []string            // substrings, each of some warning
		errors    []string            // substrings, each of the error
	}{
		{
			file:      "published-v1alpha1.yaml",
			endpoints: map[string][]string{"qwen-pool": {"10.42.0.17:8000", "10.42.1.9:8000"}},
			warnings: []string{
				"published-v1alpha1.yaml:12: InferencePool llm/qwen-pool: spec.selector.matchLabels: is the inference.networking.k8s.io/v1 spelling",
				"published-v1alpha1.yaml:14: InferencePool llm/qwen-pool: spec.targetPorts: is the inference.networking.k8s.io/v1 spelling",
				"published-v1alpha1.yaml:16: InferencePool llm/qwen-pool: spec.modelServerType: is not supported; ignored",
				"published-v1alpha1.yaml:17: InferencePool llm/qwen-pool: spec.endpointPickerRef: is the inference.networking.k8s.io/v1 spelling",
			},
		},
		{
			file:      "published-v1.yaml",
			endpoints: map[string][]string{"mistral": {"10.0.3.1:8080", "10.0.3.2:8080"}, "legacy": {"10.0.3.9:8000"}},
			warnings: []string{
				"published-v1.yaml:9: InferencePool default/mistral: spec.targetPortNumber: is the inference.networking.x-k8s.io/v1alpha2 spelling",
				"published-v1.yaml:10: InferencePool default/mistral: spec.selector: is the inference.networking.x-k8s.io/v1alpha2 spelling",
				"read as matchLabels app=mistral-7b,tier=gpu",
				"published-v1.yaml:13: InferencePool default/mistral: spec.extensionRef: is the inference.networking.x-k8s.io/v1alpha2 spelling",
				"published-v1.yaml:33: InferencePool default/legacy: spec.targetPort: is in no InferencePool version",
			},
		},
		{
			file: "published-refused.yaml",
			errors: []string{
				"published-refused.yaml:7: InferencePool default/list-selector: spec.selector: is a list",
				"published-refused.yaml:16: InferencePool default/expressions: spec.selector.matchExpressions:",
				"published-refused.yaml:25: InferencePool default/scalar-labels: spec.selector.matchLabels: is the scalar \"app=vllm\"",
				"published-refused.yaml:33: InferencePool default/two-ports: spec.targetPortNumber: says 8000 but spec.targetPorts says 8001",
				"InferencePool default/port-list: cannot decode",
				"published-refused.yaml:48: InferencePool default/nested-label: spec.selector.app: is a mapping",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r, err := adaptFile(t, tt.file)
			if m := missingFrom(warningLines(r), tt.warnings); len(m) > 0 {
				t.Errorf("no warning holds %q; warnings:\n%s", m, strings.Join(warningLines(r), "\n"))
			}
			if tt.endpoints == nil {
				if err == nil {
					t.Fatal("adapted; want an error")
				}
				if m := missingFrom(strings.Split(err.Error(), "\n"), tt.errors); len(m) > 0 {
					t.Errorf("the error lacks %q:\n%v", m, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.endpoints {
				p := findPool(r.Config, name)
				if p == nil || p.Inference == nil || !slices.Equal(p.Endpoints, want) {
					t.Errorf("pool %s = %+v, want an inference pool with endpoints %q", name, p, want)
				}
			}
		})
	}
}

// An AuthorizationPolicy whose selector names the workloads behind a route's
// backends applies to those pools when --labels (keyed by any name
// --endpoints takes) or the Service's own selector ties them; one that still
// selects nothing says which flag, with its value, would make it apply.
func TestPolicySelectsPools(t *testing.T) {
	tests := []struct {
		file     string
		pools    map[string][]string // policy → pools it applies to
		dropped  []string            // policies left out
		warnings []string            // substrings, each of some warning
	}{
		{
			file:  "authz-labels-by-service.yaml",
			pools: map[string][]string{"chat-clients": {"vllm-8000"}, "no-canary-debug": {"vllm-8000"}},
		},
		{
			file:  "authz-service-selector.yaml",
			pools: map[string][]string{"tgi-from-gateway": {"tgi-80"}},
		},
		{
			file:  "authz.yaml",
			pools: map[string][]string{"only-gateway": {"vllm"}, "block-debug": nil, "jwt-only": {"vllm"}},
		},
		{
			file:    "authz-dropped.yaml",
			dropped: []string{"v2-only-gateway", "gpu-workloads", "elsewhere"},
			warnings: []string{
				"--labels vlm names no pool (pools are vllm-8000, embed-8000",
				"authz-dropped.yaml:27: AuthorizationPolicy serving/v2-only-gateway: spec.selector: selects no pool",
				"pool vllm-8000 has app=vllm, from Service serving/vllm's selector; pool embed-8000 has no labels",
				"pass its flag: --labels vllm-8000=version=v2 or --labels embed-8000=app=vllm,version=v2; policy ignored",
				"pass its flag: --labels vllm-8000=accelerator=h100 or --labels embed-8000=accelerator=h100; policy ignored",
				"AuthorizationPolicy web/elsewhere: spec.selector: selects no pool: no pool of the input is in namespace web (they are in serving)",
				"No flag changes that",
			},
		},
		{
			file:     "unsupported.yaml",
			dropped:  []string{"nobody", "ext"},
			warnings: []string{"If the pods behind pool shadow-80 carry them, pass --labels shadow-80=app=nothing; policy ignored"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r, err := adaptFile(t, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for _, p := range r.Config.Authorization {
				got[p.Name] = p.Pools
			}
			for name, want := range tt.pools {
				if pools, ok := got[name]; !ok || !slices.Equal(pools, want) {
					t.Errorf("policy %s: pools %q (present %v), want %q", name, pools, ok, want)
				}
			}
			for _, name := range tt.dropped {
				if _, ok := got[name]; ok {
					t.Errorf("policy %s applies to %q; want it left out", name, got[name])
				}
			}
			if m := missingFrom(warningLines(r), tt.warnings); len(m) > 0 {
				t.Errorf("no warning holds %q; warnings:\n%s", m, strings.Join(warningLines(r), "\n"))
			}
		})
	}
}

// --labels keyed by the Service name, namespace/service or <service>-<port>
// gives the same pool its labels; a more specific key wins.
func TestLabelsKeys(t *testing.T) {
	in := `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: ai}
spec:
  rules: [{backendRefs: [{name: vllm, port: 8000}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: ai}
spec:
  selector: {matchLabels: {app: vllm, tier: gpu}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin/*"]}}]}]
`
	for _, tc := range []struct {
		labels map[string]map[string]string
		apply  bool
	}{
		{map[string]map[string]string{"vllm": {"app": "vllm", "tier": "gpu"}}, true},
		{map[string]map[string]string{"ai/vllm": {"app": "vllm", "tier": "gpu"}}, true},
		{map[string]map[string]string{"vllm-8000": {"app": "vllm", "tier": "gpu"}}, true},
		{map[string]map[string]string{"vllm": {"app": "vllm", "tier": "cpu"}, "vllm-8000": {"tier": "gpu"}}, true},
		{map[string]map[string]string{"vllm": {"app": "vllm", "tier": "gpu"}, "ai/vllm": {"tier": "cpu"}}, false},
		{map[string]map[string]string{"other": {"app": "vllm", "tier": "gpu"}}, false},
	} {
		opts := Options{Endpoints: map[string][]string{"vllm": {"10.0.0.1"}}, Labels: tc.labels}
		r, err := Parse([]byte(in), "x.yaml", opts)
		if err != nil {
			t.Fatal(err)
		}
		if applied := len(r.Config.Authorization) == 1; applied != tc.apply {
			t.Errorf("--labels %v: policy applied %v, want %v; warnings:\n%s", tc.labels, applied, tc.apply, strings.Join(warningLines(r), "\n"))
		}
	}
}
