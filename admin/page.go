package admin

import (
	_ "embed"
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/kvgate/kvgate/proxy"
)

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"pct":   pct,
	"pctp":  pctp,
	"num":   num,
	"msp":   msp,
	"ago":   ago,
	"until": until,
	"clock": func(t time.Time) string { return t.Format("15:04:05") },
	"join":  func(s []string) string { return strings.Join(s, ", ") },
	"chart": chart,
	"picks": pickText,
	"share": func(f float64) string { return strconv.FormatFloat(f*100, 'f', 0, 64) + "%" },
	"i64p": func(p *int64) string {
		if p == nil {
			return "–"
		}
		return strconv.FormatInt(*p, 10)
	},
	"score": func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) },
	"kvwidth": func(p *float64) string {
		if p == nil {
			return "0"
		}
		return strconv.FormatFloat(math.Min(*p, 1)*100, 'f', 0, 64)
	},
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12] + "…"
		}
		return s
	},
	"deref":    func(p *float64) float64 { return *p },
	"expiring": func(t time.Time) bool { return !t.IsZero() && time.Until(t) < 72*time.Hour },
}).Parse(pageHTML))

type pageData struct {
	Status  proxy.StatusView
	Picks   []proxy.PickRecord
	Version string
}

// Uptime is how long the proxy has been serving.
func (d *pageData) Uptime() string {
	if d.Status.Started.IsZero() {
		return "–"
	}
	return dur(d.Status.Now.Sub(d.Status.Started))
}

// Last returns the last sample's values for the header tiles.
func (d *pageData) RPS() string {
	s := d.Status.Samples
	if len(s) == 0 {
		return "–"
	}
	// The mean over the last 10 seconds reads steadier than one second.
	var n uint64
	k := min(len(s), 10)
	for _, x := range s[len(s)-k:] {
		n += x.Requests
	}
	return strconv.FormatFloat(float64(n)/float64(k), 'f', 1, 64)
}

func pct(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" }

func pctp(p *float64) string {
	if p == nil {
		return "–"
	}
	return pct(*p)
}

func msp(p *float64) string {
	if p == nil {
		return "–"
	}
	v := *p
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v/1000, 'f', 2, 64) + " s"
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 0, 64) + " ms"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
}

func num(n uint64) string {
	switch {
	case n >= 10_000_000:
		return strconv.FormatUint(n/1_000_000, 10) + "M"
	case n >= 100_000:
		return strconv.FormatUint(n/1000, 10) + "k"
	}
	return strconv.FormatUint(n, 10)
}

func dur(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 72*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return strconv.Itoa(int(d.Hours()/24)) + "d"
}

// ago is "3s ago" for a time in the past.
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	if d < time.Second {
		return "now"
	}
	return dur(d) + " ago"
}

// until is "in 3d" for an expiry, "expired 2h ago" past it.
func until(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	d := time.Until(t)
	if d < 0 {
		return "expired " + dur(-d) + " ago"
	}
	return "in " + dur(d)
}

func pickText(m map[string]uint64) string {
	var parts []string
	for _, r := range []string{"affinity", "placement", "spillover", "fallback"} {
		if n := m[r]; n > 0 {
			parts = append(parts, r+" "+num(n))
		}
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, " · ")
}

// chart draws one series of the samples as an inline SVG sparkline with an
// accessible title; kind selects the series: rps, ttft or hit.
func chart(samples []proxy.Sample, kind string) template.HTML {
	const w, h = 300.0, 60.0
	vals := make([]float64, len(samples))
	var title, unit string
	for i, s := range samples {
		switch kind {
		case "rps":
			vals[i] = float64(s.Requests)
		case "ttft":
			vals[i] = s.TTFTMs
		case "hit":
			vals[i] = s.HitRate
			if vals[i] >= 0 {
				vals[i] *= 100
			}
		}
	}
	switch kind {
	case "rps":
		title, unit = "requests per second", "/s"
	case "ttft":
		title, unit = "mean time to first token", " ms"
	case "hit":
		title, unit = "prefix cache hit rate", "%"
	}
	top := 0.0
	last := -1.0
	for _, v := range vals {
		top = math.Max(top, v)
		if v >= 0 {
			last = v
		}
	}
	if kind == "hit" {
		top = 100
	}
	if top <= 0 {
		top = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %g %g" preserveAspectRatio="none" role="img" aria-label="%s over the last %d seconds">`, w, h, title, len(vals))
	// One path; a gap where a second had no value.
	var path strings.Builder
	n := max(len(vals), 2)
	for i, v := range vals {
		if v < 0 {
			continue
		}
		x := w * float64(i) / float64(n-1)
		y := h - 2 - (h-4)*v/top
		switch {
		case i > 0 && vals[i-1] >= 0:
			fmt.Fprintf(&path, "L%.1f %.1f", x, y)
		case i+1 < len(vals) && vals[i+1] >= 0:
			fmt.Fprintf(&path, "M%.1f %.1f", x, y)
		default: // a lone second between gaps: a dot (round caps on a zero-length line)
			fmt.Fprintf(&path, "M%.1f %.1fh0.01", x, y)
		}
	}
	if path.Len() > 0 {
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="currentColor" stroke-width="1.5" stroke-linecap="round" stroke-linejoin="round" vector-effect="non-scaling-stroke"/>`, path.String())
	}
	b.WriteString(`</svg>`)
	val := "–"
	if last >= 0 {
		val = strconv.FormatFloat(last, 'f', 1, 64) + unit
	}
	fmt.Fprintf(&b, `<div class="chart-legend"><span>%s</span><b>%s</b><span class="muted">max %s%s</span></div>`,
		title, val, strconv.FormatFloat(top, 'f', 1, 64), unit)
	return template.HTML(b.String())
}
