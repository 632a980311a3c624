package loadgen

import (
	"strconv"

	"github.com/kvgate/kvgate/config"
)

// Scenario names used by StandardScenarios.
const (
	RoundRobin     = "round-robin"
	LeastRequest   = "least-request"
	Random         = "random"
	SessionHash    = "session-hash"
	GIEDefault     = "gie-default"
	SGLang         = "sglang-cache-aware"
	PrefixAffinity = "kvgate prefix-affinity"
	PrefixReplicas = "kvgate prefix-affinity, replicas"
	GIEReplicas    = "gie-default, replicas"
	Latency        = "kvgate latency"
	LatencyReplica = "kvgate latency, replicas"
	SGLangReplicas = "sglang-cache-aware, replicas"
)

// StandardScenarios returns the baselines and kvgate's own pickers, in the
// order reports show them. replicas is the instance count of the
// replicated scenarios (agreement without shared state, one per cache-aware
// picker); 0 leaves them out. The oracle (OracleScenario) is not among them.
func StandardScenarios(replicas int) []Scenario {
	sc := []Scenario{
		{Name: RoundRobin, Note: "picker round-robin (plain pools: balancer round-robin)",
			Inference: config.Inference{Picker: "round-robin"}, Balancer: "round-robin"},
		{Name: LeastRequest, Note: "picker least-request",
			Inference: config.Inference{Picker: "least-request"}},
		{Name: Random, Note: "picker random",
			Inference: config.Inference{Picker: "random"}},
		{Name: SessionHash, Note: "picker session on x-session-id = conversation key (first hash ids up to the first non-shared one)",
			Inference: config.Inference{Picker: "session", SessionHeader: "x-session-id"}, Session: true},
		{Name: GIEDefault, Note: "picker gie: the Gateway API Inference Extension's default profile (prefix 3, queue 2 (min-max normalised), kv-utilization 2, max score, 64-byte blocks, LRU per endpoint); no placement, no load bound",
			Inference: config.Inference{Picker: "gie", BlockSize: 64}},
		{Name: SGLang, Note: "picker sglang: SGLang's cache_aware rule (balance thresholds 64 absolute and 1.5x relative on in-flight requests, cache threshold 0.5, else the smallest cache); no placement",
			Inference: config.Inference{Picker: "sglang"}},
		{Name: PrefixAffinity, Note: "picker prefix-affinity (the default before latency) with its default scorers and loadBound 1.25",
			Inference: config.Inference{Picker: "prefix-affinity"}},
		{Name: Latency, Note: "picker latency: the smallest predicted TTFT (learned prefill rate and queue cost per endpoint), holders and consistent placement kept within tolerance",
			Inference: config.Inference{Picker: "latency"}},
	}
	if replicas > 1 {
		n := strconv.Itoa(replicas)
		sc = append(sc,
			Scenario{Name: GIEReplicas, Replicas: replicas,
				Note:      n + " instances of the gie picker, each with its own prefix index (as replicated endpoint pickers are); the client spreads requests round-robin",
				Inference: config.Inference{Picker: "gie", BlockSize: 64}},
			Scenario{Name: SGLangReplicas, Replicas: replicas,
				Note:      n + " instances of the sglang picker, each with its own prefix index; the client spreads requests round-robin",
				Inference: config.Inference{Picker: "sglang"}},
			Scenario{Name: PrefixReplicas, Replicas: replicas,
				Note:      n + " kvgate instances with no shared state over the same simulators; the client spreads requests round-robin",
				Inference: config.Inference{Picker: "prefix-affinity"}},
			Scenario{Name: LatencyReplica, Replicas: replicas,
				Note:      n + " kvgate instances of the latency picker, each learning its own cost models, no shared state",
				Inference: config.Inference{Picker: "latency"}})
	}
	return sc
}
