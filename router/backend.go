package router

import (
	"fmt"
	"math"
	"math/bits"
	"strings"

	"github.com/kvgate/kvgate/config"
)

// Route is one compiled route. It is immutable and safe for concurrent use.
type Route struct {
	Name string
	// Index is the route's position in the config (definition order).
	Index int
	// Listeners the route is attached to; empty means every listener.
	Listeners []string
	// Hostnames, lowercase; empty means any.
	Hostnames []string
	// Backends with their configured weights. Do not modify.
	Backends []Backend
	// Filters are the compiled route-level filters.
	Filters Filters
	// Timeouts; a zero field disables that timeout.
	Timeouts config.Timeouts
	// Retry is nil when the route does not retry.
	Retry *RetryPolicy
	// Priority when inference pools are saturated; negative is shed first.
	Priority int

	total          uint64   // sum of weights
	cum            []uint64 // cumulative weights, for random picks
	seeds          []uint64 // per-backend rendezvous seeds, from the pool name
	affinityHeader string   // lowercase
	affinityCookie string
}

// Backend is one weighted destination of a route.
type Backend struct {
	// Pool names the upstream pool.
	Pool string
	// Weight is the share weight/sum; 0 receives nothing.
	Weight int
	// Filters run for requests sent to this backend, after the route's.
	Filters Filters
	// ModelRewrite lists the weighted model names the body's model is
	// rewritten to; empty means no rewrite. Do not modify.
	ModelRewrite []config.ModelTarget

	modelTotal uint64
	modelCum   []uint64
}

func compileBackends(cs []config.Backend) ([]Backend, error) {
	bs := make([]Backend, 0, len(cs))
	for i, c := range cs {
		if c.Weight == nil {
			return nil, fmt.Errorf("backends[%d].weight is unset: compile a configuration that went through config.Default, which sets it", i)
		}
		b := Backend{Pool: c.Pool, Weight: *c.Weight}
		if b.Weight < 0 {
			return nil, fmt.Errorf("backends[%d].weight is %d: use 0 or more", i, b.Weight)
		}
		var err error
		if b.Filters, err = compileFilters(c.Filters); err != nil {
			return nil, fmt.Errorf("backends[%d].filters: %w", i, err)
		}
		if b.Filters.Redirect != nil {
			return nil, fmt.Errorf("backends[%d].filters: requestRedirect is a route filter: move it to the route", i)
		}
		if len(c.ModelRewrite) > 0 {
			b.ModelRewrite = append([]config.ModelTarget(nil), c.ModelRewrite...)
			b.modelCum, b.modelTotal = modelWeights(b.ModelRewrite)
		}
		bs = append(bs, b)
	}
	return bs, nil
}

// modelWeights returns cumulative weights. When every weight is 0 (unset),
// the targets share equally.
func modelWeights(ts []config.ModelTarget) ([]uint64, uint64) {
	allZero := true
	for _, t := range ts {
		if t.Weight > 0 {
			allZero = false
		}
	}
	cum := make([]uint64, len(ts))
	var total uint64
	for i, t := range ts {
		w := max(t.Weight, 0)
		if allZero {
			w = 1
		}
		total += uint64(w)
		cum[i] = total
	}
	return cum, total
}

func (r *Route) initPick() {
	r.cum = make([]uint64, len(r.Backends))
	r.seeds = make([]uint64, len(r.Backends))
	seen := map[string]uint64{}
	for i := range r.Backends {
		b := &r.Backends[i]
		r.total += uint64(b.Weight)
		r.cum[i] = r.total
		// The seed depends on the pool name (and its repeat count), not on the
		// position, so adding or reordering backends moves as few keys as possible.
		r.seeds[i] = mix64(KeyOf(b.Pool) + seen[b.Pool]*0x9e3779b97f4a7c15)
		seen[b.Pool]++
	}
}

// PickBackend chooses a backend by weight. key 0 means "no sticky key": the
// choice uses rnd, a uniform random uint64 the caller supplies. Any other key
// always gives the same backend for the same weights (weighted rendezvous
// hashing: changing one backend's weight moves only keys to or from that
// backend). It returns nil when every weight is 0 or there are no backends.
// The result points into the route and must not be modified.
func (r *Route) PickBackend(key uint64, rnd uint64) *Backend {
	if r.total == 0 {
		return nil
	}
	if key == 0 {
		return &r.Backends[pickCum(r.cum, r.total, rnd)]
	}
	best, bestScore := -1, 0.0
	for i := range r.Backends {
		w := r.Backends[i].Weight
		if w == 0 {
			continue
		}
		// u is uniform in (0,1); -ln(u)/w is exponential with rate w, and the
		// smallest of those wins with probability w/sum.
		u := (float64(mix64(key^r.seeds[i])>>11) + 0.5) / (1 << 53)
		s := -math.Log(u) / float64(w)
		if best < 0 || s < bestScore {
			best, bestScore = i, s
		}
	}
	return &r.Backends[best]
}

// pickCum maps rnd onto [0,total) and returns the index whose cumulative range holds it.
func pickCum(cum []uint64, total, rnd uint64) int {
	x, _ := bits.Mul64(rnd, total)
	for i, c := range cum {
		if x < c {
			return i
		}
	}
	return len(cum) - 1
}

// RewriteModel picks the model name to write into the request body, by
// weight, using rnd (a uniform random uint64). ok is false when the backend
// has no model rewrite. Targets whose weights are all 0 (unset) share equally;
// otherwise a target of weight 0 is never chosen.
func (b *Backend) RewriteModel(rnd uint64) (model string, ok bool) {
	if b.modelTotal == 0 {
		return "", false
	}
	return b.ModelRewrite[pickCum(b.modelCum, b.modelTotal, rnd)].Model, true
}

// StickyKey returns the session key for the route's sessionAffinity: a hash of
// the named header's value or the named cookie's value. It returns 0 when the
// route has no affinity or the request carries no value. It does not allocate.
// Only the first Cookie header is read: HTTP/2 engines must join cookie fields.
func (r *Route) StickyKey(req Request) uint64 {
	switch {
	case r.affinityHeader != "":
		return KeyOf(req.Header(r.affinityHeader))
	case r.affinityCookie != "":
		return KeyOf(CookieValue(req.Header("cookie"), r.affinityCookie))
	}
	return 0
}

// KeyOf hashes a string into a sticky key: 0 for "", never 0 otherwise.
func KeyOf(s string) uint64 {
	if s == "" {
		return 0
	}
	h := uint64(14695981039346656037) // FNV-1a offset basis
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	h = mix64(h)
	if h == 0 {
		h = 1
	}
	return h
}

// CookieValue returns the value of the named cookie in a Cookie header value
// ("a=1; b=2"), with surrounding double quotes removed, or "" when absent.
func CookieValue(header, name string) string {
	for header != "" {
		var part string
		part, header, _ = strings.Cut(header, ";")
		k, v, ok := strings.Cut(part, "=")
		if !ok || strings.Trim(k, " \t") != name {
			continue
		}
		v = strings.Trim(v, " \t")
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		return v
	}
	return ""
}

// mix64 is the splitmix64 finalizer: a cheap bijective scrambler.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
