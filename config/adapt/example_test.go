package adapt_test

import (
	"fmt"

	"github.com/kvgate/kvgate/config/adapt"
)

// A Gateway and an HTTPRoute to an InferencePool, with endpoints given the
// way `kvgate adapt --endpoints` gives them on a machine without a cluster.
func ExampleParse() {
	manifests := `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: kvgate
  listeners: [{name: http, protocol: HTTP, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: llm}
spec:
  parentRefs: [{name: gw}]
  rules:
    - backendRefs: [{group: inference.networking.k8s.io, kind: InferencePool, name: vllm}]
---
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: vllm}
spec:
  selector: {matchLabels: {app: vllm}}
  targetPorts: [{number: 8000}]
`
	opts := adapt.Options{Endpoints: map[string][]string{"vllm": {"10.0.0.1", "10.0.0.2"}}}
	r, err := adapt.Parse([]byte(manifests), "llm.yaml", opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(string(r.YAML))
	fmt.Println("warnings:", len(r.Warnings))
	// Output:
	// listeners:
	//     - name: gw-http
	//       address: 0.0.0.0:8080
	// routes:
	//     - name: llm-0
	//       listeners:
	//         - gw-http
	//       backends:
	//         - pool: vllm
	// pools:
	//     - name: vllm
	//       endpoints:
	//         - 10.0.0.1:8000
	//         - 10.0.0.2:8000
	//       inference: {}
	// warnings: 0
}
