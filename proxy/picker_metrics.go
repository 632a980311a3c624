package proxy

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvgate/kvgate/pick"
)

var (
	descPicks          = desc("kvgate_picks_total", "Inference picks by pool, endpoint and reason (affinity, spillover, placement, fallback).", "pool", "endpoint", "reason")
	descPickerInflight = endpointDesc("kvgate_picker_inflight_requests", "Requests between pick and end of stream, as the picker counts them.")
	descPickerTokens   = endpointDesc("kvgate_picker_inflight_prompt_tokens", "Estimated prompt tokens of the requests in flight.")
	descRecentPicks    = endpointDesc("kvgate_picker_recent_picks", "Picks among the pool's last 256 (the load the bound weighs).")
	descQueueDepth     = endpointDesc("kvgate_endpoint_queue_depth", "Scraped queue depth (waiting requests).")
	descRunning        = endpointDesc("kvgate_endpoint_running_requests", "Scraped running requests.")
	descKV             = endpointDesc("kvgate_endpoint_kv_utilization", "Scraped KV-cache utilisation, 0..1 (NaN when not reported).")
	descScrapeAge      = endpointDesc("kvgate_endpoint_metrics_age_seconds", "Age of the last good scrape (+Inf when never).")
	descSuspect        = endpointDesc("kvgate_endpoint_suspect", "1 when the last metrics scrape failed.")
	descMatchRatio     = desc("kvgate_prefix_match_ratio", "Matched leading blocks / prompt blocks on the chosen endpoint.", "pool")
	descIndexEntries   = desc("kvgate_prefix_index_entries", "(endpoint, block) entries in the pool's prefix index.", "pool")
	descIndexBytes     = desc("kvgate_prefix_index_bytes", "Approximate memory of the pool's prefix index.", "pool")
	descQueueWaiting   = desc("kvgate_inference_queue_waiting", "Requests waiting because every endpoint is saturated.", "pool")
	descShed           = desc("kvgate_inference_shed_total", "Requests answered 429 because every endpoint was saturated and their priority was negative.", "pool")
	descQueueRejected  = desc("kvgate_inference_queue_rejected_total", "Queued requests answered 503 (queue full or timeout).", "pool")
)

// collectPicker sends the inference picking series: picks by reason, the
// prefix match ratio, in-flight requests and prompt tokens, scraped queue
// depth and KV utilisation with their age, index size and the saturation
// queue.
func (p *Proxy) collectPicker(e emitter) {
	m := p.infer.pools.Load()
	if m == nil {
		return
	}
	now := time.Now().UnixNano()
	for n, ip := range *m {
		for _, ep := range ip.endpoints().states {
			for _, reason := range pick.Reasons {
				e.counter(descPicks, float64(ep.Picks(reason)), n, ep.Addr, reason.String())
			}
			reqs, toks := ep.Inflight()
			e.gauge(descPickerInflight, float64(reqs), n, ep.Addr)
			e.gauge(descPickerTokens, float64(toks), n, ep.Addr)
			e.gauge(descRecentPicks, float64(ep.Recent()), n, ep.Addr)
			sc := ep.Scraped()
			e.gauge(descQueueDepth, float64(sc.Waiting), n, ep.Addr)
			e.gauge(descRunning, float64(sc.Running), n, ep.Addr)
			e.gauge(descKV, sc.KV, n, ep.Addr)
			age := math.Inf(1)
			if sc.At != 0 {
				age = float64(now-sc.At) / 1e9
			}
			e.gauge(descScrapeAge, age, n, ep.Addr)
			suspect := 0.0
			if ep.Suspect() {
				suspect = 1
			}
			e.gauge(descSuspect, suspect, n, ep.Addr)
		}
		cum, count := ip.picks().Ratio()
		buckets := make(map[float64]uint64, len(cum))
		for i, b := range pick.RatioBuckets {
			buckets[b] = cum[i]
		}
		h, err := prometheus.NewConstHistogram(descMatchRatio, count, ip.picks().RatioSum(), buckets, validLabels([]string{n})...)
		e.send(descMatchRatio, h, err)
		entries, bytes := ip.picks().Index().Stats()
		e.gauge(descIndexEntries, float64(entries), n)
		e.gauge(descIndexBytes, float64(bytes), n)
		e.gauge(descQueueWaiting, float64(ip.q.waiting()), n)
		e.counter(descShed, float64(ip.q.shed.Load()), n)
		e.counter(descQueueRejected, float64(ip.q.tout.Load()), n)
		collectKVEvents(e, n, ip) // picker_kvevents.go
	}
}
