package pick

import (
	"testing"
	"time"
)

// TestExplainIsADryRun: Explain answers what Pick would, and changes no
// state: no in-flight count, no pick count, no recent share, nothing in
// the prefix index (a later Pick of a new prompt is still a placement).
func TestExplainIsADryRun(t *testing.T) {
	p, eps := testPool(t, 4, nil)
	warm(t, p, eps)
	text := longText("explained", 2048)
	type state struct {
		inflight, recent int64
		picks            uint64
		models           int // per-model cost models (a dry run claims no slot)
	}
	snap := func() []state {
		var out []state
		for _, e := range eps {
			n, _ := e.Inflight()
			var picks uint64
			for _, r := range Reasons {
				picks += e.Picks(r)
			}
			out = append(out, state{n, e.Recent(), picks, len(e.ModelCostModels())})
		}
		return out
	}
	before := snap()
	_, ratioBefore := p.Ratio()
	pc := AcquirePickContext()
	pc.Req = prompt("explained-model", "", text)
	pc.Keep = true
	d := p.Explain(pc, eps)
	if d.Endpoint == nil || d.Reason != ReasonPlacement {
		t.Fatalf("explain = %+v, want a placement", d)
	}
	if len(pc.Kept) != len(eps) {
		t.Errorf("Kept %d candidates, want %d", len(pc.Kept), len(eps))
	}
	chosenScored := false
	for _, c := range pc.Kept {
		chosenScored = chosenScored || c.E == d.Endpoint && c.Score > 0
	}
	if !chosenScored {
		t.Errorf("the chosen endpoint has no score in Kept: %+v", pc.Kept)
	}
	ReleasePickContext(pc)
	after := snap()
	for i := range before {
		if before[i] != after[i] {
			t.Errorf("%s changed: %+v → %+v", eps[i].Addr, before[i], after[i])
		}
	}
	if _, r := p.Ratio(); r != ratioBefore {
		t.Errorf("ratio count %d → %d", ratioBefore, r)
	}
	real := pick(t, p, eps, prompt("explained-model", "", text))
	if real.Endpoint != d.Endpoint || real.Reason != ReasonPlacement {
		t.Errorf("Pick after Explain = %s (%s), want the explained %s as a placement: the dry run must teach the index nothing", real.Endpoint.Addr, real.Reason, d.Endpoint.Addr)
	}
	real.Endpoint.End(real.Tokens)
}

// TestKeepOffKeepsNothing: without Keep a pick leaves Kept empty.
func TestKeepOffKeepsNothing(t *testing.T) {
	p, eps := testPool(t, 3, nil)
	pc := AcquirePickContext()
	defer ReleasePickContext(pc)
	pc.Req = prompt("m", "", longText("x", 512))
	d := p.Pick(pc, eps)
	d.Endpoint.End(d.Tokens)
	if len(pc.Kept) != 0 {
		t.Errorf("Kept %d candidates without Keep", len(pc.Kept))
	}
}

func TestUsageTokens(t *testing.T) {
	_, eps := testPool(t, 1, nil)
	e := eps[0]
	e.Observe(Outcome{TTFT: time.Millisecond, PromptTokens: 100, CachedTokens: 64})
	e.Observe(Outcome{PromptTokens: 50, CachedTokens: 80}) // more cached than prompt: capped
	e.Observe(Outcome{Status: 500})
	if p, c := e.UsageTokens(); p != 150 || c != 114 {
		t.Errorf("UsageTokens = %d, %d; want 150, 114", p, c)
	}
}
