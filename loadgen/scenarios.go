package loadgen

import "github.com/kvgate/kvgate/config"

// Scenario names used by StandardScenarios.
const (
	RoundRobin     = "round-robin"
	LeastRequest   = "least-request"
	Random         = "random"
	SessionHash    = "session-hash"
	GIEDefault     = "gie-default"
	SGLangApprox   = "sglang-cache-aware~"
	PrefixAffinity = "kvgate prefix-affinity"
	PrefixReplicas = "kvgate prefix-affinity, replicas"
)

// StandardScenarios returns the baselines and kvgate's own picker, in the
// order reports show them. replicas is the kvgate instance count of the
// last scenario (the agreement-without-shared-state run); 0 leaves it out.
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
		{Name: GIEDefault, Note: "Gateway API Inference Extension defaults: scorers prefix 3, queue 2, kv-utilization 2, blockSize 64, no load bound (loadBound 100)",
			Inference: config.Inference{Picker: "prefix-affinity", BlockSize: 64, LoadBound: 100, Scorers: []config.ScorerWeight{
				{Name: "prefix", Weight: 3}, {Name: "queue", Weight: 2}, {Name: "kv-utilization", Weight: 2}}}},
		{Name: SGLangApprox, Note: "approximation of SGLang's cache_aware policy through config: longest prefix match first (prefix 1), " +
			"in-flight requests as tie-breaker (0.1), imbalance relative threshold 1.5 as loadBound; SGLang's cache_threshold and " +
			"absolute threshold have no config equivalent",
			Inference: config.Inference{Picker: "prefix-affinity", LoadBound: 1.5, Scorers: []config.ScorerWeight{
				{Name: "prefix", Weight: 1}, {Name: "inflight-requests", Weight: 0.1}}}},
		{Name: PrefixAffinity, Note: "kvgate default: picker prefix-affinity with its default scorers and loadBound 1.25",
			Inference: config.Inference{Picker: "prefix-affinity"}},
	}
	if replicas > 1 {
		sc = append(sc, Scenario{Name: PrefixReplicas, Replicas: replicas,
			Note:      "four kvgate instances with no shared state over the same simulators; the client spreads requests round-robin",
			Inference: config.Inference{Picker: "prefix-affinity"}})
	}
	return sc
}
