package pick

import "math"

// The built-in scorers, registered by name; inference.scorers may name them.
var (
	scorerPrefix = scorerPlugin("prefix",
		"matched leading prompt blocks / prompt blocks",
		func() Scorer { return PrefixScorer{} })
	scorerQueue = scorerPlugin("queue",
		"queue depth (scraped when fresh, else in flight), relative to the busiest endpoint",
		func() Scorer { return QueueScorer{} })
	scorerQueueMinMax = scorerPlugin("queue-minmax",
		"queue depth min-max normalised across the endpoints, as the Inference Extension scores it",
		func() Scorer { return MinMaxQueueScorer{} })
	scorerKV = scorerPlugin("kv-utilization",
		"1 - scraped KV-cache utilisation when fresh, else in-flight prompt tokens",
		func() Scorer { return KVScorer{} })
	scorerInflight = scorerPlugin("inflight-requests",
		"proxy-side requests in flight, relative to the busiest endpoint",
		func() Scorer { return InflightScorer{} })
	scorerTokens = scorerPlugin("inflight-tokens",
		"proxy-side prompt tokens in flight, relative to the busiest endpoint",
		func() Scorer { return TokensScorer{} })
	scorerLoRA = scorerPlugin("lora",
		"prefers endpoints running the requested LoRA adapter, then waiting on it, then able to load it",
		func() Scorer { return LoRAScorer{} })
)

// Interface guards.
var (
	_ Scorer = PrefixScorer{}
	_ Scorer = QueueScorer{}
	_ Scorer = MinMaxQueueScorer{}
	_ Scorer = KVScorer{}
	_ Scorer = InflightScorer{}
	_ Scorer = TokensScorer{}
	_ Scorer = LoRAScorer{}
)

// PrefixScorer scores matched leading blocks / total blocks (0 when the
// prompt has no full block).
type PrefixScorer struct{}

func (PrefixScorer) Score(pc *PickContext, cands []Candidate, out []float64) {
	n := len(pc.Req.Blocks)
	if n == 0 {
		return
	}
	for i := range cands {
		out[i] = float64(cands[i].Matched) / float64(n)
	}
}

// relativeLoad scores a load figure of every candidate against the busiest
// one: out[i] = 1 - load/(max load + smooth). The smoothing keeps one extra
// request from outweighing a cache hit while staying monotone (less load,
// higher score). load must not retain its argument.
func relativeLoad(cands []Candidate, out []float64, smooth float64, load func(*Candidate) float64) {
	hi := 0.0
	for i := range cands {
		hi = max(hi, load(&cands[i]))
	}
	for i := range cands {
		out[i] = 1 - load(&cands[i])/(hi+smooth)
	}
}

func queueOf(c *Candidate) float64    { return c.Queue }
func inflightOf(c *Candidate) float64 { return float64(c.Inflight) }
func tokensOf(c *Candidate) float64   { return float64(c.Tokens) }

// QueueScorer scores queue depth: scraped waiting requests when fresh, else
// proxy in-flight requests; 1 - q/(max q + queueThreshold).
type QueueScorer struct{}

func (QueueScorer) Score(pc *PickContext, cands []Candidate, out []float64) {
	relativeLoad(cands, out, pc.QueueThreshold(), queueOf)
}

// MinMaxQueueScorer scores queue depth (as QueueScorer reads it) min-max
// normalised across the candidates, as the Inference Extension's queue scorer
// does: the shortest queue scores 1, the longest 0, and equal queues all
// score 1. One request of difference weighs as much as a hundred; the gie
// preset uses it.
type MinMaxQueueScorer struct{}

func (MinMaxQueueScorer) Score(pc *PickContext, cands []Candidate, out []float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := range cands {
		lo, hi = min(lo, cands[i].Queue), max(hi, cands[i].Queue)
	}
	for i := range cands {
		out[i] = 1
		if hi > lo {
			out[i] = (hi - cands[i].Queue) / (hi - lo)
		}
	}
}

// tokenSmoothing is the in-flight token figure below which token counts
// matter little: about one typical prompt.
const tokenSmoothing = 2048

// KVScorer scores 1 - KV utilisation when fresh; for stale or missing
// metrics it scores proxy in-flight prompt tokens as TokensScorer does.
type KVScorer struct{}

func (KVScorer) Score(pc *PickContext, cands []Candidate, out []float64) {
	relativeLoad(cands, out, tokenSmoothing, tokensOf)
	for i := range cands {
		if kv := cands[i].KV; !math.IsNaN(kv) {
			out[i] = 1 - kv
		}
	}
}

// InflightScorer scores proxy-side in-flight requests:
// 1 - n/(max n + queueThreshold).
type InflightScorer struct{}

func (InflightScorer) Score(pc *PickContext, cands []Candidate, out []float64) {
	relativeLoad(cands, out, pc.QueueThreshold(), inflightOf)
}

// TokensScorer scores proxy-side in-flight prompt tokens.
type TokensScorer struct{}

func (TokensScorer) Score(pc *PickContext, cands []Candidate, out []float64) {
	relativeLoad(cands, out, tokenSmoothing, tokensOf)
}

// LoRAScorer prefers endpoints already running the requested adapter (1),
// then waiting on it (0.75), then able to load it (0.5), else 0. For a base
// model every endpoint scores the same.
type LoRAScorer struct{}

func (LoRAScorer) Score(pc *PickContext, cands []Candidate, out []float64) {
	for i := range cands {
		switch loraState(cands[i].E.lora.Load(), pc.Req.Model) {
		case loraRunning:
			out[i] = 1
		case loraWaiting:
			out[i] = 0.75
		case loraLoadable:
			out[i] = 0.5
		}
	}
}
