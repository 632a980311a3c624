package loadgen

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// This file generates workloads that separate endpoint pickers, beside the
// Mooncake trace: many tenants behind long shared contexts under cache
// pressure (Tenants), long agentic sessions whose context grows every turn
// (Agentic), and a burst that saturates the pool (Burst). Each is a
// Mooncake-shaped []Request, so the replay, the text and the session keys
// work as for the trace; each is deterministic: the same spec and seed give
// the same requests. Timestamps are model time (replay them with a time
// scale equal to the simulators').
//
// Hash ids: each workload draws its ids from its own range (tenant t's
// context is ids tenantBase + t×blocks + i, and so on), so that ids never
// collide between tenants, sessions or workloads.

const (
	tenantBase  = 1 << 40
	agentBase   = 2 << 40
	burstBase   = 3 << 40
	uniqueStart = 1 << 48 // per-request blocks (questions, tool outputs)
)

// TenantSpec shapes the multi-tenant workload: every tenant has a long
// shared context (a system prompt with its documents) and sends short
// questions behind it, tenants' popularity following a Zipf law. It is the
// shape of the published precise-versus-approximate prefix-cache benchmark
// (150 tenants with 6,000-token contexts over 8 servers).
type TenantSpec struct {
	// Tenants is the number of tenants; at least 1.
	Tenants int
	// ContextTokens is each tenant's shared context, in tokens (rounded up
	// to whole TraceBlockTokens blocks).
	ContextTokens int
	// QuestionTokens are the bounds of a question's length, drawn uniformly.
	QuestionMin, QuestionMax int
	// Requests is the number of requests; at least 1.
	Requests int
	// Rate is the mean arrival rate, requests per second of model time
	// (Poisson arrivals).
	Rate float64
	// Skew is the Zipf exponent of tenant popularity (> 1; 1.1 is mild).
	Skew float64
	// Output is each request's output length in tokens.
	Output int
}

// DefaultTenantSpec is the recorded benchmark's multi-tenant workload.
func DefaultTenantSpec() TenantSpec {
	return TenantSpec{Tenants: 150, ContextTokens: 6000, QuestionMin: 32, QuestionMax: 480,
		Requests: 900, Rate: 24, Skew: 1.1, Output: 16}
}

// Tenants generates the multi-tenant workload from seed. Request i's
// Session is its tenant.
func Tenants(s TenantSpec, seed uint64) []Request {
	r := rand.New(rand.NewPCG(seed, 0x7e4a47))
	s.Tenants, s.Requests = max(s.Tenants, 1), max(s.Requests, 1)
	ctx := max((s.ContextTokens+TraceBlockTokens-1)/TraceBlockTokens, 1)
	qmin := max(s.QuestionMin, 1)
	qmax := min(max(s.QuestionMax, qmin), TraceBlockTokens)
	zipf := rand.NewZipf(r, max(s.Skew, 1.0001), 1, uint64(s.Tenants-1))
	// Tenant ranks are shuffled, so that the hottest tenants are not the
	// first ids (whose placement would then be the same for every seed).
	rank := r.Perm(s.Tenants)
	out := make([]Request, 0, s.Requests)
	at := 0.0
	for i := range s.Requests {
		at += r.ExpFloat64() / max(s.Rate, 1e-3)
		t := rank[zipf.Uint64()]
		ids := make([]uint64, 0, ctx+1)
		for b := range ctx {
			ids = append(ids, tenantBase+uint64(t*ctx+b))
		}
		ids = append(ids, uniqueStart+tenantBase+uint64(i))
		q := qmin + r.IntN(qmax-qmin+1)
		out = append(out, Request{
			Timestamp: int64(at * 1000), InputLength: ctx*TraceBlockTokens + q, OutputLength: s.Output,
			HashIDs: ids, Session: fmt.Sprint("tenant-", t),
		})
	}
	return out
}

// AgenticSpec shapes long agentic sessions: an agent's shared instructions
// and tool definitions, then turns that each append a tool's output (and the
// model's call) to the context, separated by the time the tool runs.
type AgenticSpec struct {
	// Sessions is the number of sessions; at least 1.
	Sessions int
	// Turns is each session's number of requests; at least 1.
	Turns int
	// SystemTokens is the instructions every session shares.
	SystemTokens int
	// GrowMin and GrowMax bound what each turn appends, in tokens.
	GrowMin, GrowMax int
	// PauseMin and PauseMax bound the tool-call pause between turns.
	PauseMin, PauseMax time.Duration
	// Spread is the window over which sessions start (uniformly).
	Spread time.Duration
	// Output is each request's output length in tokens.
	Output int
}

// DefaultAgenticSpec is the recorded benchmark's agentic workload: contexts
// grow to about 30,000 tokens.
func DefaultAgenticSpec() AgenticSpec {
	return AgenticSpec{Sessions: 32, Turns: 10, SystemTokens: 3000, GrowMin: 1500, GrowMax: 4500,
		PauseMin: time.Second, PauseMax: 6 * time.Second, Spread: 20 * time.Second, Output: 16}
}

// Agentic generates the agentic workload from seed. Request Session is its
// session.
func Agentic(s AgenticSpec, seed uint64) []Request {
	r := rand.New(rand.NewPCG(seed, 0xa6e47))
	s.Sessions, s.Turns = max(s.Sessions, 1), max(s.Turns, 1)
	sys := (s.SystemTokens + TraceBlockTokens - 1) / TraceBlockTokens
	gmin := max(s.GrowMin, 1)
	gmax := max(s.GrowMax, gmin)
	var out []Request
	next := uint64(uniqueStart + agentBase)
	for sess := range s.Sessions {
		at := time.Duration(r.Int64N(int64(max(s.Spread, 1))))
		ids := make([]uint64, 0, sys)
		for b := range sys {
			ids = append(ids, agentBase+uint64(b))
		}
		tokens := sys * TraceBlockTokens
		for turn := range s.Turns {
			if turn > 0 {
				at += s.PauseMin + time.Duration(r.Int64N(int64(max(s.PauseMax-s.PauseMin, 1))))
			}
			grow := gmin + r.IntN(gmax-gmin+1)
			// The context so far fills whole blocks; the new part's last
			// block is partial until the next turn completes it.
			tokens = len(ids)*TraceBlockTokens + grow
			for len(ids)*TraceBlockTokens < tokens {
				ids = append(ids, next)
				next++
			}
			out = append(out, Request{
				Timestamp: at.Milliseconds(), InputLength: tokens, OutputLength: s.Output,
				HashIDs: slices.Clone(ids), Session: fmt.Sprint("agent-", sess),
			})
		}
	}
	slices.SortStableFunc(out, func(a, b Request) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
	return out
}

// BurstSpec shapes a burst that saturates the pool: steady conversations,
// then, at BurstAt, BurstRequests new conversations arriving within
// BurstWindow, all behind one shared system prompt.
type BurstSpec struct {
	// Conversations, Turns, Think and Stagger shape the steady traffic:
	// conversations starting Stagger apart, Think between their turns.
	Conversations, Turns int
	Think, Stagger       time.Duration
	// SystemTokens is the prompt every request starts with.
	SystemTokens int
	// TurnTokens is what each turn (and each burst request) adds.
	TurnTokens int
	// BurstAt, BurstRequests and BurstWindow place the burst.
	BurstAt       time.Duration
	BurstRequests int
	BurstWindow   time.Duration
	// Output is each request's output length in tokens.
	Output int
}

// DefaultBurstSpec is the recorded benchmark's burst: 240 requests within
// one second over steady traffic of about 6 requests per second.
func DefaultBurstSpec() BurstSpec {
	return BurstSpec{Conversations: 48, Turns: 5, Think: 4 * time.Second, Stagger: 500 * time.Millisecond,
		SystemTokens: 2048, TurnTokens: 1500, BurstAt: 12 * time.Second, BurstRequests: 240,
		BurstWindow: time.Second, Output: 16}
}

// Burst generates the burst workload from seed. Request Session is its
// conversation.
func Burst(s BurstSpec, seed uint64) []Request {
	r := rand.New(rand.NewPCG(seed, 0xb0257))
	sys := (s.SystemTokens + TraceBlockTokens - 1) / TraceBlockTokens
	turn := max((s.TurnTokens+TraceBlockTokens-1)/TraceBlockTokens, 1)
	next := uint64(uniqueStart + burstBase)
	start := func() []uint64 {
		ids := make([]uint64, 0, sys+turn)
		for b := range sys {
			ids = append(ids, burstBase+uint64(b))
		}
		return ids
	}
	grow := func(ids []uint64) []uint64 {
		for range turn {
			ids = append(ids, next)
			next++
		}
		return ids
	}
	var out []Request
	for c := range max(s.Conversations, 0) {
		ids := start()
		at := time.Duration(c)*s.Stagger + time.Duration(r.Int64N(int64(max(s.Stagger, 1))))
		for t := range max(s.Turns, 1) {
			if t > 0 {
				at += s.Think/2 + time.Duration(r.Int64N(int64(max(s.Think, 1))))
			}
			ids = grow(ids)
			out = append(out, Request{Timestamp: at.Milliseconds(), InputLength: len(ids)*TraceBlockTokens - TraceBlockTokens/4,
				OutputLength: s.Output, HashIDs: slices.Clone(ids), Session: fmt.Sprint("conv-", c)})
		}
	}
	for b := range max(s.BurstRequests, 0) {
		ids := grow(start())
		at := s.BurstAt + time.Duration(r.Int64N(int64(max(s.BurstWindow, 1))))
		out = append(out, Request{Timestamp: at.Milliseconds(), InputLength: len(ids)*TraceBlockTokens - TraceBlockTokens/4,
			OutputLength: s.Output, HashIDs: ids, Session: fmt.Sprint("burst-", b)})
	}
	slices.SortStableFunc(out, func(a, b Request) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
	return out
}

// Workload is a named generated workload with the simulator cache size it is
// meant to run against.
type Workload struct {
	// Name selects it (replay --workload).
	Name string
	// Doc says in a line what it is and what its parameters are.
	Doc string
	// Generate returns its requests for a seed.
	Generate func(seed uint64) []Request
	// Blocks is the simulators' num-gpu-blocks it is sized for (16 tokens
	// a block): small enough that the cache is under pressure.
	Blocks int
}

// Workloads returns the generated workloads, with their default specs.
func Workloads() []Workload {
	t, a, b := DefaultTenantSpec(), DefaultAgenticSpec(), DefaultBurstSpec()
	return []Workload{
		{Name: "tenants", Blocks: 6000,
			Doc: fmt.Sprintf("%d tenants (Zipf %.1f) with %d-token shared contexts, questions of %d-%d tokens, %d requests at %.0f/s (Poisson); 6,000 blocks (96k tokens) a server hold about 15 contexts, the pool about 120 of %d",
				t.Tenants, t.Skew, t.ContextTokens, t.QuestionMin, t.QuestionMax, t.Requests, t.Rate, t.Tenants),
			Generate: func(seed uint64) []Request { return Tenants(t, seed) }},
		{Name: "agentic", Blocks: 8000,
			Doc: fmt.Sprintf("%d agent sessions of %d turns behind %d shared tokens, each turn appending %d-%d tokens (contexts reach about %dk), tool pauses %v-%v, starts over %v; 8,000 blocks (128k tokens) a server",
				a.Sessions, a.Turns, a.SystemTokens, a.GrowMin, a.GrowMax, (a.SystemTokens+a.Turns*(a.GrowMin+a.GrowMax)/2)/1000, a.PauseMin, a.PauseMax, a.Spread),
			Generate: func(seed uint64) []Request { return Agentic(a, seed) }},
		{Name: "burst", Blocks: 20000,
			Doc: fmt.Sprintf("%d conversations of %d turns (%v apart, think %v) behind a %d-token system prompt, %d tokens a turn; at %v, %d new conversations within %v",
				b.Conversations, b.Turns, b.Stagger, b.Think, b.SystemTokens, b.TurnTokens, b.BurstAt, b.BurstRequests, b.BurstWindow),
			Generate: func(seed uint64) []Request { return Burst(b, seed) }},
	}
}

// LookupWorkload returns the generated workload called name.
func LookupWorkload(name string) (Workload, error) {
	var names []string
	for _, w := range Workloads() {
		if w.Name == name {
			return w, nil
		}
		names = append(names, w.Name)
	}
	return Workload{}, fmt.Errorf("loadgen: unknown workload %q; use mooncake (the trace) or one of %s", name, strings.Join(names, ", "))
}
