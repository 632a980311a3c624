package pick

import "github.com/kvgate/kvgate/cache"

// Precise mode. A pool whose endpoints publish KV events (vLLM's
// --kv-events-config, followed by package kvevents into the pool's
// cache.TokenIndex) can match a request by the token ids the model server's
// tokenizer gave it (PickRequest.TokenBlocks) instead of by hashed prompt
// text. For every candidate whose events are live (subscribed, in sequence,
// not stale: cache.TokenIndex.Live), Candidate.Matched is then its real
// cached prefix, converted to the prompt's text blocks so that the prefix
// scorer, placement and the load bound read it unchanged, and
// Candidate.CachedTokens is that prefix in tokens. Candidates whose events
// are not live keep the approximate index's estimate, so one endpoint that
// does not publish (or whose stream broke) does not turn precise mode off
// for the others. Picks are still recorded in the approximate index, which
// stays warm for the fallback.

// Tokens returns the pool's precise cache state, which the KV event
// subscribers fill.
func (p *Pool) Tokens() *cache.TokenIndex { return p.tokens }

// ConfigurePrecise sets the precise state's bound per endpoint (blocks) and
// its stale window (nanoseconds; see cache.TokenIndex.Live).
func (p *Pool) ConfigurePrecise(maxBlocks int, staleNanos int64) {
	p.tokens.SetCapacity(maxBlocks)
	p.tokens.SetStaleAfter(staleNanos)
}

// matchPrecise matches the request's token blocks (when it has them) and
// reports whether every endpoint of eps is live, so that the approximate
// index need not be read at all. Only called for picks that read prefixes.
func (p *Pool) matchPrecise(pc *PickContext, eps []*Endpoint) (all bool) {
	pc.pmatch = pc.pmatch[:0]
	if len(pc.Req.TokenBlocks) == 0 {
		return false
	}
	pc.pmatch = p.tokens.Match(pc.Req.TokenBlocks, pc.pmatch)
	for _, e := range eps {
		if s := e.tslot; s < 0 || s >= len(pc.pmatch) || !p.tokens.Live(s, pc.Now) {
			return false
		}
	}
	return true
}

// precise replaces c's approximate match by its precise one when c's events
// are live.
func (p *Pool) precise(pc *PickContext, c *Candidate) {
	s := c.E.tslot
	if s < 0 || s >= len(pc.pmatch) || !p.tokens.Live(s, pc.Now) {
		return
	}
	held, total := pc.pmatch[s], len(pc.Req.TokenBlocks)
	held = max(held, p.tokens.Speculated(s, pc.Req.TokenBlocks, pc.Now))
	c.Precise = true
	c.CachedTokens = held * p.tokens.BlockSize() // held: confirmed or speculated
	n := len(pc.Req.Blocks)
	switch {
	case held >= total:
		c.Matched = n
	case pc.set.blockSize > 0:
		// A fixed ratio (cache.CharsPerToken bytes a token, as PromptTokens counts), not
		// held/total × n: the match sets the placement key's depth, which
		// must not move with the length of the rest of the prompt, or the
		// turns of one conversation would be placed apart.
		c.Matched = min(n, c.CachedTokens*cache.CharsPerToken/pc.set.blockSize)
	default:
		c.Matched = held * n / total
	}
}
