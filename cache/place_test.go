package cache

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func addrs(n int) []string {
	eps := make([]string, n)
	for i := range eps {
		eps[i] = fmt.Sprintf("10.0.%d.%d:8000", i/250, i%250)
	}
	return eps
}

func TestPlaceEmpty(t *testing.T) {
	if got := Place(1, nil, nil, 1.25); got != -1 {
		t.Fatalf("Place over no endpoints = %d, want -1", got)
	}
}

// The winner depends on the addresses and loads, not on their order.
func TestPlaceDeterministicAcrossOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	eps := addrs(16)
	for trial := 0; trial < 500; trial++ {
		key := r.Uint64()
		loads := make([]int, len(eps))
		for i := range loads {
			loads[i] = r.IntN(10)
		}
		want := eps[Place(key, eps, loads, 1.25)]
		perm := r.Perm(len(eps))
		pe, pl := make([]string, len(eps)), make([]int, len(eps))
		for i, j := range perm {
			pe[i], pl[i] = eps[j], loads[j]
		}
		if got := pe[Place(key, pe, pl, 1.25)]; got != want {
			t.Fatalf("key %x: %s in one order, %s in another", key, want, got)
		}
	}
}

// With no load, keys spread evenly (rendezvous hashing).
func TestPlaceSpreadsKeys(t *testing.T) {
	eps := addrs(16)
	count := make([]int, len(eps))
	const keys = 16000
	for k := uint64(0); k < keys; k++ {
		count[Place(k*0x9e3779b97f4a7c15, eps, nil, testLoadBound)]++
	}
	for i, c := range count {
		if c < keys/16*7/10 || c > keys/16*13/10 {
			t.Errorf("%s got %d of %d keys, want about %d", eps[i], c, keys, keys/16)
		}
	}
}

// A hot key moves to its next rendezvous candidate when its endpoint is over
// the bound, then to the next, and comes back when the load falls.
func TestPlaceBoundedLoadSpillOver(t *testing.T) {
	eps := addrs(8)
	const key = 0xfeedface
	first := Place(key, eps, nil, 1.25)
	// The second choice is the winner once the first is gone.
	rest := slices.Delete(slices.Clone(eps), first, first+1)
	second := slices.Index(eps, rest[Place(key, rest, nil, 1.25)])

	loads := make([]int, len(eps))
	for i := range loads {
		loads[i] = 4
	}
	if got := Place(key, eps, loads, 1.25); got != first {
		t.Fatalf("under equal loads got %s, want the first choice %s", eps[got], eps[first])
	}
	// limit = ceil(1.25 * (total+1) / 8); with total = 7*4 + 10 = 38, limit = 7.
	loads[first] = 10
	if got := Place(key, eps, loads, 1.25); got != second {
		t.Fatalf("first choice over bound: got %s, want second choice %s", eps[got], eps[second])
	}
	// A looser bound keeps it at home: ceil(2.0*39/8) = 10 >= 10+1? no; 3.0 gives 15.
	if got := Place(key, eps, loads, 3.0); got != first {
		t.Errorf("with bound 3.0 got %s, want first choice %s", eps[got], eps[first])
	}
	loads[first] = 4
	if got := Place(key, eps, loads, 1.25); got != first {
		t.Errorf("after the load fell got %s, want first choice %s", eps[got], eps[first])
	}
}

// Sending one hot key again and again never lets any endpoint exceed the
// bound, and spreads the key over at least n/bound endpoints.
func TestPlaceHotKeyRespectsBound(t *testing.T) {
	for _, bound := range []float64{1, 1.25, 2} {
		eps := addrs(8)
		loads := make([]int, len(eps))
		total := 0
		for step := 0; step < 400; step++ {
			i := Place(42, eps, loads, bound)
			loads[i]++
			total++
			limit := int(math.Ceil(bound * float64(total) / float64(len(eps))))
			if m := slices.Max(loads); m > limit {
				t.Fatalf("bound %.2f step %d: max load %d over limit %d (%v)", bound, step, m, limit, loads)
			}
		}
		// Each endpoint holds at most bound*mean, so at least n/bound share it.
		used := 0
		for _, l := range loads {
			if l > 0 {
				used++
			}
		}
		if want := int(float64(len(eps)) / bound); used < want {
			t.Errorf("bound %.2f: hot key spread over %d endpoints, want at least %d: %v", bound, used, want, loads)
		}
	}
}

func TestPlaceBoundArguments(t *testing.T) {
	eps := addrs(4)
	loads := []int{0, 0, 0, 0}
	home := Place(7, eps, loads, 1)
	loads[home] = 1 // total 1: limit with bound 1 = ceil(2/4) = 1, so home is full
	// A bound below 1, or NaN, acts as 1: never a default of its own.
	for _, b := range []float64{1, 0.5, 0, -1, math.NaN()} {
		if got := Place(7, eps, loads, b); got == home {
			t.Errorf("bound %v: still placed on the full endpoint", b)
		}
	}
	// With 4 more requests elsewhere, bound 1 (limit ceil(6/4) = 2) fits
	// home again.
	loads[(home+1)%4] = 4
	for _, b := range []float64{1, 0, math.NaN()} {
		if got := Place(7, eps, loads, b); got != home {
			t.Errorf("bound %v: placed on %d, want home %d", b, got, home)
		}
	}
	// Short loads slices count as zero.
	if Place(7, eps, []int{}, 1.25) != Place(7, eps, nil, 1.25) {
		t.Error("empty and nil loads disagree")
	}
}

// replica is a minimal prefix-affinity picker over one Index, as a kvgate
// replica would run it: best leading match, or consistent placement when no
// endpoint holds the first block.
type replica struct {
	x      *Index
	eps    []string
	blocks []uint64
	out    []int
	loads  map[string]int
}

func newReplica(eps []string) *replica {
	r := &replica{x: NewIndex(2000), eps: eps, loads: map[string]int{}}
	for _, e := range eps {
		r.x.Add(e)
	}
	return r
}

func (r *replica) pick(model string, text []byte) (ep string, placed bool) {
	seed := Seed(model, "")
	r.blocks = Blocks(seed, text, testBlockSize, r.blocks)
	r.out = r.x.Match(r.blocks, r.out)
	best := slices.Max(r.out)
	loads := make([]int, len(r.eps))
	for i, e := range r.eps {
		loads[i] = r.loads[e]
	}
	if best == 0 {
		ep = r.eps[Place(PlacementKey(seed, r.blocks, PlacementDepth), r.eps, loads, testLoadBound)]
	} else {
		// Ties between equally matched endpoints are broken by placement too.
		var tied []string
		var tiedLoads []int
		for s, m := range r.out {
			if m == best {
				name, _ := endpointAt(r.x, s)
				tied = append(tied, name)
				tiedLoads = append(tiedLoads, r.loads[name])
			}
		}
		ep = tied[Place(r.blocks[best-1], tied, tiedLoads, testLoadBound)]
	}
	r.x.Record(ep, r.blocks)
	r.loads[ep]++
	return ep, best == 0
}

// Two replicas that know the endpoints in different orders, fed the same
// stream, make the same choices, including for prefixes nobody holds.
func TestReplicasAgreeOnNewPrefixes(t *testing.T) {
	eps := addrs(8)
	rev := slices.Clone(eps)
	slices.Reverse(rev)
	a, b := newReplica(eps), newReplica(rev)
	rnd := rand.New(rand.NewPCG(5, 6))
	systems := []string{strings.Repeat("You are a support bot. ", 100), strings.Repeat("You write SQL. ", 150)}
	var convs [][]byte
	placed, used := 0, map[string]bool{}
	for step := 0; step < 600; step++ {
		var text []byte
		if len(convs) == 0 || rnd.IntN(3) == 0 { // a new conversation
			text = fmt.Appendf(nil, "%suser: question %d %s\n", systems[rnd.IntN(2)], step, strings.Repeat("detail ", rnd.IntN(60)))
			convs = append(convs, text)
		} else { // the next turn of an existing one
			i := rnd.IntN(len(convs))
			convs[i] = fmt.Appendf(convs[i], "assistant: answer %d\nuser: follow-up %s\n", step, strings.Repeat("more ", rnd.IntN(40)))
			text = convs[i]
		}
		model := []string{"llama", "qwen"}[rnd.IntN(2)]
		ea, pa := a.pick(model, text)
		eb, _ := b.pick(model, text)
		if ea != eb {
			t.Fatalf("step %d: replica a picked %s, replica b %s", step, ea, eb)
		}
		if pa {
			placed++
			used[ea] = true
		}
		if step%40 == 0 { // requests finish: loads decay identically on both
			for _, r := range []*replica{a, b} {
				for e := range r.loads {
					r.loads[e] /= 2
				}
			}
		}
	}
	if placed < 4 || len(used) < 2 {
		t.Fatalf("the stream exercised placement %d times over %d endpoints; the test needs more", placed, len(used))
	}
}

// Keying placement deeper than the first block spreads conversations that
// share one system prompt; keying on the first block piles them up.
func TestPlacementDepthSpreadsSharedSystemPrompt(t *testing.T) {
	eps := addrs(8)
	seed := Seed("m", "")
	system := strings.Repeat("Shared system prompt for every tenant. ", 40) // about 1.5 KiB
	deep, shallow := map[int]int{}, map[int]int{}
	var blocks []uint64
	for c := 0; c < 800; c++ {
		text := fmt.Appendf(nil, "%suser: conversation %d asks %s", system, c, strings.Repeat("why ", 300))
		blocks = Blocks(seed, text, testBlockSize, blocks)
		deep[Place(PlacementKey(seed, blocks, PlacementDepth), eps, nil, testLoadBound)]++
		shallow[Place(PlacementKey(seed, blocks, 1), eps, nil, testLoadBound)]++
	}
	if len(shallow) != 1 {
		t.Errorf("first-block keys used %d endpoints, expected all on one", len(shallow))
	}
	for i, n := range deep {
		if n > 800/8*2 {
			t.Errorf("deep keys put %d of 800 conversations on %s", n, eps[i])
		}
	}
	if len(deep) != len(eps) {
		t.Errorf("deep keys used %d of %d endpoints", len(deep), len(eps))
	}
}
