package pick

// The built-in filters, registered by name.
var (
	filterHealthy = filterPlugin("healthy",
		"drops ejected endpoints, and endpoints whose last scrape failed while others are fine",
		func() Filter { return HealthyFilter{} })
	filterNotSaturated = filterPlugin("not-saturated",
		"drops endpoints whose fresh metrics, with the requests sent since the scrape, reach the queue or KV threshold, unless all do",
		func() Filter { return NotSaturatedFilter{} })
	filterScrapedNotSaturated = filterPlugin("scraped-not-saturated",
		"not-saturated on the scraped metrics alone, as the Inference Extension filters: the requests sent since the scrape do not count",
		func() Filter { return NotSaturatedFilter{ScrapeOnly: true} })
	filterLoRA = filterPlugin("lora-loadable",
		"keeps, for a known LoRA adapter, the endpoints that run it or can load it",
		func() Filter { return LoRAFilter{} })
)

// Interface guards.
var (
	_ Filter = HealthyFilter{}
	_ Filter = NotSaturatedFilter{}
	_ Filter = LoRAFilter{}
)

// HealthyFilter drops endpoints ejected by passive health checks
// (Endpoint.ObserveConnect), and endpoints whose last scrape failed
// (suspect) unless every remaining one is.
type HealthyFilter struct{}

func (HealthyFilter) Filter(pc *PickContext, cands []Candidate) []Candidate {
	out := cands[:0]
	suspects := 0
	for _, c := range cands {
		if !c.E.Ready(pc.Now) {
			continue
		}
		if c.E.suspect.Load() {
			suspects++
		}
		out = append(out, c)
	}
	if suspects == 0 || suspects == len(out) {
		return out
	}
	fine := out[:0]
	for _, c := range out {
		if !c.E.suspect.Load() {
			fine = append(fine, c)
		}
	}
	return fine
}

// NotSaturatedFilter drops endpoints whose fresh metrics say they are
// saturated (queue ≥ queueThreshold or KV ≥ kvThreshold, the queue counting
// the requests sent since the scrape that are still in flight); when every
// one is, it keeps them all and sets PickContext.Saturated.
type NotSaturatedFilter struct {
	// ScrapeOnly reads the scraped queue alone (the gie preset's rule):
	// then a burst within one scrape interval all goes to the endpoint the
	// scrape showed just below the threshold.
	ScrapeOnly bool
}

func (f NotSaturatedFilter) Filter(pc *PickContext, cands []Candidate) []Candidate {
	saturated := pc.saturated
	if f.ScrapeOnly {
		saturated = pc.scrapedSaturated
	}
	n := 0
	for i := range cands {
		if !saturated(&cands[i]) {
			n++
		}
	}
	if n == len(cands) {
		return cands
	}
	if n == 0 {
		pc.Saturated = true
		return cands
	}
	out := cands[:0]
	for _, c := range cands {
		if !saturated(&c) {
			out = append(out, c)
		}
	}
	return out
}

// LoRAFilter keeps, for a request naming a LoRA adapter that some candidate
// reports (running or waiting), the endpoints where it is present or can be
// loaded (fewer running adapters than max_lora). Requests for a base model
// (an adapter no endpoint reports) pass unchanged, as do all candidates when
// none qualifies.
type LoRAFilter struct{}

func (LoRAFilter) Filter(pc *PickContext, cands []Candidate) []Candidate {
	m := pc.Req.Model
	if m == "" {
		return cands
	}
	known, ok := false, 0
	for i := range cands {
		st := loraState(cands[i].E.lora.Load(), m)
		known = known || st == loraRunning || st == loraWaiting
		if st != loraAbsent {
			ok++
		}
	}
	if !known || ok == 0 || ok == len(cands) {
		return cands
	}
	out := cands[:0]
	for _, c := range cands {
		if loraState(c.E.lora.Load(), m) != loraAbsent {
			out = append(out, c)
		}
	}
	return out
}

const (
	loraAbsent = iota
	loraLoadable
	loraWaiting
	loraRunning
)

// loraState says how an endpoint reporting l stands towards adapter model.
func loraState(l *LoRAInfo, model string) int {
	if l == nil {
		return loraAbsent
	}
	for _, a := range l.Running {
		if a == model {
			return loraRunning
		}
	}
	for _, a := range l.Waiting {
		if a == model {
			return loraWaiting
		}
	}
	if l.Max > len(l.Running) {
		return loraLoadable
	}
	return loraAbsent
}
