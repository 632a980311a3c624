package loadgen

import (
	"math"

	"github.com/kvgate/kvgate/sim"
)

// Oracle is the name of the oracle scenario (OracleScenario).
const Oracle = "oracle (reads the simulators' caches)"

// OracleScenario is the hit-rate reference: no kvgate, the client itself
// sends every request straight to a simulator chosen by reading the real
// prefix caches (sim.Server.CachedBlocks) at the moment it is sent: among
// the simulators whose load (running + waiting) is within one batch
// (MaxBatch) of the least loaded, the one holding the longest prefix of the
// prompt, the least loaded among equals. The load rule keeps it from piling
// everything onto the first server that cached a shared system prompt; it
// weighs no learned cost, so its hit rate is the target and its latency is
// not.
func OracleScenario() Scenario {
	return Scenario{Name: Oracle, Oracle: true,
		Note: "no kvgate: each request goes straight to the simulator whose real cache holds its longest prefix, among those within one batch of the least loaded: the hit-rate reference"}
}

// oracleRoute returns the oracle's choice of simulator URL for a request.
func oracleRoute(sims []*sim.Running) func(Request) string {
	cfg := sims[0].Server.Config()
	return func(req Request) string {
		text := sim.ChatText("user", PromptText(req.HashIDs, req.InputLength))
		hashes := sim.BlockHashes(cfg.Model, "", text)
		loads := make([]int, len(sims))
		least := math.MaxInt
		for i, s := range sims {
			st := s.Server.Stats()
			loads[i] = st.Running + st.Waiting
			least = min(least, loads[i])
		}
		best, bestHit := -1, -1
		for i, s := range sims {
			if loads[i] > least+cfg.MaxBatch {
				continue
			}
			hit := s.Server.CachedBlocks(hashes)
			if hit > bestHit || hit == bestHit && loads[i] < loads[best] {
				best, bestHit = i, hit
			}
		}
		return sims[best].URL
	}
}
