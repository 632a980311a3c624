package proxy

import (
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/kvgate/kvgate/pick"
)

// writePickerMetrics renders the inference picking series: picks by reason,
// the prefix match ratio, in-flight requests and prompt tokens, scraped
// queue depth and KV utilisation with their age, index size and the
// saturation queue.
func (p *Proxy) writePickerMetrics(w io.Writer) {
	m := p.infer.pools.Load()
	if m == nil || len(*m) == 0 {
		return
	}
	names := make([]string, 0, len(*m))
	for n := range *m {
		names = append(names, n)
	}
	slices.Sort(names)
	type row struct {
		pool string
		e    *pick.Endpoint
	}
	var rows []row
	for _, n := range names {
		for _, e := range (*m)[n].endpoints().states {
			rows = append(rows, row{n, e})
		}
	}
	now := time.Now().UnixNano()
	fmt.Fprintln(w, "# HELP kvgate_picks_total Inference picks by pool, endpoint and reason (affinity, spillover, placement, fallback).")
	fmt.Fprintln(w, "# TYPE kvgate_picks_total counter")
	for _, r := range rows {
		for _, reason := range pick.Reasons {
			fmt.Fprintf(w, "kvgate_picks_total{pool=%q,endpoint=%q,reason=%q} %d\n", r.pool, r.e.Addr, reason, r.e.Picks(reason))
		}
	}
	gauge := func(name, help string, val func(r row) float64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
		for _, r := range rows {
			fmt.Fprintf(w, "%s{pool=%q,endpoint=%q} %g\n", name, r.pool, r.e.Addr, val(r))
		}
	}
	gauge("kvgate_picker_inflight_requests", "Requests between pick and end of stream, as the picker counts them.", func(r row) float64 {
		n, _ := r.e.Inflight()
		return float64(n)
	})
	gauge("kvgate_picker_inflight_prompt_tokens", "Estimated prompt tokens of those requests.", func(r row) float64 {
		_, t := r.e.Inflight()
		return float64(t)
	})
	gauge("kvgate_picker_recent_picks", "Picks among the pool's last 256 (the load the bound weighs).", func(r row) float64 { return float64(r.e.Recent()) })
	gauge("kvgate_endpoint_queue_depth", "Scraped queue depth (waiting requests).", func(r row) float64 { return float64(r.e.Scraped().Waiting) })
	gauge("kvgate_endpoint_running_requests", "Scraped running requests.", func(r row) float64 { return float64(r.e.Scraped().Running) })
	gauge("kvgate_endpoint_kv_utilization", "Scraped KV-cache utilisation, 0..1 (NaN when not reported).", func(r row) float64 { return r.e.Scraped().KV })
	gauge("kvgate_endpoint_metrics_age_seconds", "Age of the last good scrape (+Inf when never).", func(r row) float64 {
		at := r.e.Scraped().At
		if at == 0 {
			return math.Inf(1)
		}
		return float64(now-at) / 1e9
	})
	gauge("kvgate_endpoint_suspect", "1 when the last metrics scrape failed.", func(r row) float64 {
		if r.e.Suspect() {
			return 1
		}
		return 0
	})
	fmt.Fprintln(w, "# HELP kvgate_prefix_match_ratio Matched leading blocks / prompt blocks on the chosen endpoint.")
	fmt.Fprintln(w, "# TYPE kvgate_prefix_match_ratio histogram")
	for _, n := range names {
		cum, count := (*m)[n].picks().Ratio()
		for i, b := range pick.RatioBuckets {
			fmt.Fprintf(w, "kvgate_prefix_match_ratio_bucket{pool=%q,le=\"%g\"} %d\n", n, b, cum[i])
		}
		fmt.Fprintf(w, "kvgate_prefix_match_ratio_bucket{pool=%q,le=\"+Inf\"} %d\n", n, count)
		fmt.Fprintf(w, "kvgate_prefix_match_ratio_count{pool=%q} %d\n", n, count)
	}
	pool := func(name, help, typ string, val func(ip *infPool) float64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for _, n := range names {
			fmt.Fprintf(w, "%s{pool=%q} %g\n", name, n, val((*m)[n]))
		}
	}
	pool("kvgate_prefix_index_entries", "(endpoint, block) entries in the pool's prefix index.", "gauge", func(ip *infPool) float64 {
		e, _ := ip.picks().Index().Stats()
		return float64(e)
	})
	pool("kvgate_prefix_index_bytes", "Approximate memory of the pool's prefix index.", "gauge", func(ip *infPool) float64 {
		_, b := ip.picks().Index().Stats()
		return float64(b)
	})
	pool("kvgate_inference_queue_waiting", "Requests waiting because every endpoint is saturated.", "gauge", func(ip *infPool) float64 { return float64(ip.q.waiting()) })
	pool("kvgate_inference_shed_total", "Requests answered 429 because every endpoint was saturated and their priority was negative.", "counter", func(ip *infPool) float64 { return float64(ip.q.shed.Load()) })
	pool("kvgate_inference_queue_rejected_total", "Queued requests answered 503 (queue full or timeout).", "counter", func(ip *infPool) float64 { return float64(ip.q.tout.Load()) })
	writeKVEventMetrics(w, names, *m)
}
