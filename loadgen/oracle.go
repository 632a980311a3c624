package loadgen

import (
	"github.com/kvgate/kvgate/sim"
)

// Oracle is the name of the oracle scenario (OracleScenario).
const Oracle = "oracle (reads the simulators' caches)"

// OracleScenario is the hit-rate reference: no kvgate, the client itself
// sends every request straight to the simulator whose real prefix cache
// (sim.Server.CachedBlocks) holds the longest prefix of the prompt at the
// moment it is sent, the least busy (running + waiting) among equals. No
// router can know more about the caches; it weighs no queue against a hit,
// so its hit rate is the target and its latency is not.
func OracleScenario() Scenario {
	return Scenario{Name: Oracle, Oracle: true,
		Note: "no kvgate: each request goes straight to the simulator whose real cache holds its longest prefix (least running + waiting among equals): the hit-rate reference"}
}

// oracleRoute returns the oracle's choice of simulator URL for a request.
func oracleRoute(sims []*sim.Running, model string) func(Request) string {
	return func(req Request) string {
		text := sim.ChatText("user", PromptText(req.HashIDs, req.InputLength))
		hashes := sim.BlockHashes(model, "", text)
		best, bestHit, bestLoad := 0, -1, 0
		for i, s := range sims {
			hit := s.Server.CachedBlocks(hashes)
			st := s.Server.Stats()
			load := st.Running + st.Waiting
			if hit > bestHit || hit == bestHit && load < bestLoad {
				best, bestHit, bestLoad = i, hit, load
			}
		}
		return sims[best].URL
	}
}
