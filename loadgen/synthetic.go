package loadgen

import (
	"cmp"
	"slices"
	"time"
)

// SyntheticSpec shapes a conversation workload generated in code.
type SyntheticSpec struct {
	// Conversations is the number of independent conversations; at least 1.
	Conversations int
	// Turns is the number of requests per conversation; at least 1.
	Turns int
	// SystemBlocks is the length of the system prompt every conversation
	// starts with, in trace blocks of TraceBlockTokens tokens; 0 or more.
	SystemBlocks int
	// TurnBlocks is how many blocks each turn adds (user message plus the
	// previous answer); at least 1.
	TurnBlocks int
	// Stagger separates the starts of consecutive conversations.
	Stagger time.Duration
	// Think separates consecutive turns of one conversation.
	Think time.Duration
	// Output is each request's output length in tokens.
	Output int
}

// Synthetic returns a Mooncake-shaped workload: every conversation begins
// with the same system prompt, and turn t of a conversation repeats turn
// t-1's prompt and adds TurnBlocks blocks, the last of them three quarters
// full. Requests are sorted by arrival. Invalid counts are raised to 1.
func Synthetic(s SyntheticSpec) []Request {
	s.Conversations = max(s.Conversations, 1)
	s.Turns = max(s.Turns, 1)
	s.TurnBlocks = max(s.TurnBlocks, 1)
	s.SystemBlocks = max(s.SystemBlocks, 0)
	sys := make([]uint64, s.SystemBlocks)
	for i := range sys {
		sys[i] = uint64(i)
	}
	next := uint64(s.SystemBlocks)
	var out []Request
	for c := range s.Conversations {
		ids := slices.Clone(sys)
		start := time.Duration(c) * s.Stagger
		for t := range s.Turns {
			for range s.TurnBlocks {
				ids = append(ids, next)
				next++
			}
			out = append(out, Request{
				Timestamp:    (start + time.Duration(t)*s.Think).Milliseconds(),
				InputLength:  len(ids)*TraceBlockTokens - TraceBlockTokens/4,
				OutputLength: s.Output,
				HashIDs:      slices.Clone(ids),
			})
		}
	}
	slices.SortStableFunc(out, func(a, b Request) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
	return out
}
