package loadgen

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/kvgate/kvgate/config"
)

// Every generated workload is deterministic from its seed, sorted by
// arrival, valid as a trace, and has the shape its spec describes.
func TestWorkloadsDeterministicAndShaped(t *testing.T) {
	for _, w := range Workloads() {
		t.Run(w.Name, func(t *testing.T) {
			a, b, c := w.Generate(1), w.Generate(1), w.Generate(2)
			if !reflect.DeepEqual(a, b) {
				t.Fatal("the same seed gave different requests")
			}
			if reflect.DeepEqual(a, c) {
				t.Fatal("seeds 1 and 2 gave the same requests")
			}
			if w.Doc == "" || w.Blocks <= 0 {
				t.Errorf("doc %q, blocks %d", w.Doc, w.Blocks)
			}
			sessions := map[string]bool{}
			for i, r := range a {
				if i > 0 && r.Timestamp < a[i-1].Timestamp {
					t.Fatalf("request %d arrives before request %d", i, i-1)
				}
				if need := (r.InputLength + TraceBlockTokens - 1) / TraceBlockTokens; r.InputLength <= 0 || need > len(r.HashIDs) || r.Session == "" {
					t.Fatalf("request %d: input %d tokens with %d ids, session %q", i, r.InputLength, len(r.HashIDs), r.Session)
				}
				sessions[r.Session] = true
			}
			switch w.Name {
			case "tenants":
				s := DefaultTenantSpec()
				if len(a) != s.Requests || len(sessions) < s.Tenants/2 {
					t.Errorf("%d requests from %d tenants", len(a), len(sessions))
				}
				// Requests of one tenant share its whole context, and differ after.
				ctx := (s.ContextTokens + TraceBlockTokens - 1) / TraceBlockTokens
				first := map[string][]uint64{}
				for _, r := range a {
					if f, ok := first[r.Session]; ok {
						if !slices.Equal(f[:ctx], r.HashIDs[:ctx]) || f[ctx] == r.HashIDs[ctx] {
							t.Fatalf("tenant %s: contexts differ or questions repeat", r.Session)
						}
					}
					first[r.Session] = r.HashIDs
				}
			case "agentic":
				s := DefaultAgenticSpec()
				longest := 0
				last := map[string][]uint64{}
				for _, r := range a {
					if prev, ok := last[r.Session]; ok && (len(r.HashIDs) <= len(prev) || !slices.Equal(prev, r.HashIDs[:len(prev)])) {
						t.Fatalf("session %s: turn does not extend the previous context", r.Session)
					}
					last[r.Session] = r.HashIDs
					longest = max(longest, r.InputLength)
				}
				if len(a) != s.Sessions*s.Turns || longest < 20000 {
					t.Errorf("%d requests, longest %d tokens; want %d and tens of thousands", len(a), longest, s.Sessions*s.Turns)
				}
			case "burst":
				s := DefaultBurstSpec()
				in := 0
				for _, r := range a {
					if at := time.Duration(r.Timestamp) * time.Millisecond; at >= s.BurstAt && at <= s.BurstAt+s.BurstWindow {
						in++
					}
				}
				if in < s.BurstRequests {
					t.Errorf("%d requests within the burst window, want at least %d", in, s.BurstRequests)
				}
			}
		})
	}
	if _, err := LookupWorkload("nope"); err == nil {
		t.Error("unknown workload accepted")
	}
}

// The oracle routes by the simulators' real caches: replaying one tenant's
// questions one at a time, every question after the first hits the whole
// shared context, which a round robin over two servers cannot do.
func TestOracleScenario(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	o := tinyOptions()
	o.Workload = Tenants(TenantSpec{Tenants: 1, ContextTokens: 1024, QuestionMin: 32, QuestionMax: 64, Requests: 6, Rate: 1000, Skew: 1.1, Output: 4}, 1)
	oracle, err := Run(ctx, o, OracleScenario())
	if err != nil {
		t.Fatal(err)
	}
	rr, err := Run(ctx, o, Scenario{Name: "rr", Inference: config.Inference{Picker: "round-robin"}, Balancer: "round-robin"})
	if err != nil {
		t.Fatal(err)
	}
	if oracle.Failed != 0 || oracle.HitRate <= rr.HitRate || oracle.MaxMeanShare != 2 {
		t.Errorf("oracle: hit rate %.3f (round robin %.3f), max/mean share %.2f (want 2: every request to one server), failed %d (%s)",
			oracle.HitRate, rr.HitRate, oracle.MaxMeanShare, oracle.Failed, oracle.FirstError)
	}
}
