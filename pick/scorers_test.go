package pick

import (
	"math"
	"testing"
)

// Every built-in scorer on one set of three candidates: the values are the
// formulas of the scorers' contract comments worked out by hand.
func TestScorers(t *testing.T) {
	nan := math.NaN()
	cands := []Candidate{
		{Matched: 8, Queue: 0, KV: 0.25, Inflight: 0, Tokens: 0, E: &Endpoint{}},
		{Matched: 2, Queue: 5, KV: nan, Inflight: 3, Tokens: 2048, E: &Endpoint{}},
		{Matched: 0, Queue: 10, KV: nan, Inflight: 6, Tokens: 4096, E: &Endpoint{}},
	}
	cands[0].E.lora.Store(&LoRAInfo{Running: []string{"adapter"}, Max: 2})
	cands[1].E.lora.Store(&LoRAInfo{Waiting: []string{"adapter"}, Max: 1})
	pc := &PickContext{set: &settings{queueT: 5}}
	pc.Req.Blocks = make([]uint64, 8)
	pc.Req.Model = "adapter"
	// Equal queues all score 1 under min-max normalisation.
	same := []Candidate{{Queue: 3}, {Queue: 3}}
	out := make([]float64, 2)
	MinMaxQueueScorer{}.Score(pc, same, out)
	if out[0] != 1 || out[1] != 1 {
		t.Errorf("equal queues scored %v, want 1 each", out)
	}
	for _, c := range []struct {
		name string
		want [3]float64
	}{
		{"prefix", [3]float64{1, 0.25, 0}},
		// 1 - q/(max q + queueThreshold) = 1 - q/15
		{"queue", [3]float64{1, 1 - 5.0/15, 1 - 10.0/15}},
		// (max q - q)/(max q - min q)
		{"queue-minmax", [3]float64{1, 0.5, 0}},
		// fresh KV: 1 - kv; stale: in-flight tokens, 1 - t/(4096+2048)
		{"kv-utilization", [3]float64{0.75, 1 - 2048.0/6144, 1 - 4096.0/6144}},
		{"inflight-requests", [3]float64{1, 1 - 3.0/11, 1 - 6.0/11}},
		{"inflight-tokens", [3]float64{1, 1 - 2048.0/6144, 1 - 4096.0/6144}},
		// adapter running 1, waiting 0.75, no LoRA information 0
		{"lora", [3]float64{1, 0.75, 0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			scorer, err := NewScorer(c.name)
			if err != nil {
				t.Fatal(err)
			}
			out := make([]float64, len(cands))
			scorer.Score(pc, cands, out)
			for i, w := range c.want {
				if math.Abs(out[i]-w) > 1e-12 {
					t.Errorf("candidate %d scored %g, want %g (all: %v)", i, out[i], w, out)
				}
			}
		})
	}
}
