package cache

import (
	"encoding/binary"
	"math"

	"github.com/cespare/xxhash/v2"
)

// Place picks the endpoint for a prompt prefix no endpoint holds yet, so that
// independent kvgate replicas that see the same endpoints and similar loads
// pick the same one without sharing any state.
//
// It is rendezvous (highest random weight) hashing with bounded loads: every
// endpoint gets the weight xxhash64(key, xxhash64(address)); the winner is the
// highest-weight endpoint whose load, plus this request, stays within
// ceil(bound * (total+1) / len(endpoints)). So a hot key spills to its
// second-highest endpoint, then its third, and so on, in an order that
// depends only on the key and the addresses, never on their order in the
// slice. Equal weights fall to the smaller address.
//
// loads[i] is endpoints[i]'s current load (in-flight requests, say); a nil or
// short loads slice counts missing loads as 0, and negative loads as 0.
// bound is the bounded-load factor over the mean (the pool's configured
// inference.loadBound) and must be >= 1, so that some endpoint always fits;
// a smaller one, and NaN, is raised to 1, the strictest balance. With no
// loads (nil) every endpoint fits and the bound plays no part. It returns an
// index into endpoints, or -1 when endpoints is empty. Place does not
// allocate; it hashes every address, about 10 ns each.
func Place(key uint64, endpoints []string, loads []int, bound float64) int {
	if len(endpoints) == 0 {
		return -1
	}
	if !(bound >= 1) { // also NaN
		bound = 1
	}
	total := 0
	for i := range endpoints {
		total += loadAt(loads, i)
	}
	limit := math.Ceil(bound * float64(total+1) / float64(len(endpoints)))
	best, bestAny := -1, -1
	var bestW, bestAnyW uint64
	for i, ep := range endpoints {
		w := weight(key, ep)
		if bestAny < 0 || better(w, ep, bestAnyW, endpoints[bestAny]) {
			bestAny, bestAnyW = i, w
		}
		if float64(loadAt(loads, i)+1) > limit {
			continue
		}
		if best < 0 || better(w, ep, bestW, endpoints[best]) {
			best, bestW = i, w
		}
	}
	if best < 0 { // only with inconsistent loads (overflow); stay deterministic
		return bestAny
	}
	return best
}

func loadAt(loads []int, i int) int {
	if i < len(loads) && loads[i] > 0 {
		return loads[i]
	}
	return 0
}

func better(w uint64, ep string, bw uint64, bep string) bool {
	if w != bw {
		return w > bw
	}
	return ep < bep
}

// weight is the rendezvous weight of endpoint ep for key.
func weight(key uint64, ep string) uint64 {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], key)
	binary.LittleEndian.PutUint64(b[8:], xxhash.Sum64String(ep))
	return xxhash.Sum64(b[:])
}
