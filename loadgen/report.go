package loadgen

import (
	"cmp"
	"fmt"
	"html"
	"io"
	"slices"
	"strings"
	"time"
)

// WriteMarkdown writes one table row per report, preceded by a header.
func WriteMarkdown(w io.Writer, reports []Report) error {
	var b strings.Builder
	b.WriteString("| scenario | kvgate replicas | requests | failed | hit rate | TTFT p50 | TTFT p99 | output tok/s | max/mean share | per-endpoint share |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range reports {
		shares := make([]string, len(r.Share))
		for i, s := range r.Share {
			shares[i] = fmt.Sprintf("%.0f%%", 100*s)
		}
		hit := fmt.Sprintf("%.1f%%", 100*r.HitRate)
		if r.Runs > 1 {
			hit += fmt.Sprintf(" (%.1f-%.1f)", 100*r.HitRateMin, 100*r.HitRateMax)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %s | %s | %.0f | %.2f | %s |\n",
			r.Scenario, r.Replicas, r.Requests, r.Failed, hit, ms(r.TTFTP50), ms(r.TTFTP99),
			r.OutputTokensPerSec, r.MaxMeanShare, strings.Join(shares, " / "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// MedianReport summarises several replays of one scenario: each figure is
// the median of the runs' figures, taken separately (the lower middle one
// for an even count), failures are summed, and the per-endpoint shares are
// those of the run whose hit rate is the median. A single run comes back
// as it is.
func MedianReport(runs []Report) Report {
	if len(runs) == 0 {
		return Report{}
	}
	r := runs[0]
	if len(runs) == 1 {
		return r
	}
	byHit := slices.Clone(runs)
	slices.SortStableFunc(byHit, func(a, b Report) int { return cmp.Compare(a.HitRate, b.HitRate) })
	mid := (len(runs) - 1) / 2
	r = byHit[mid]
	r.Runs = len(runs)
	r.HitRateMin, r.HitRateMax = byHit[0].HitRate, byHit[len(byHit)-1].HitRate
	r.TTFTP50 = middle(runs, func(x Report) time.Duration { return x.TTFTP50 })
	r.TTFTP99 = middle(runs, func(x Report) time.Duration { return x.TTFTP99 })
	r.OutputTokensPerSec = middle(runs, func(x Report) float64 { return x.OutputTokensPerSec })
	r.MaxMeanShare = middle(runs, func(x Report) float64 { return x.MaxMeanShare })
	r.Failed, r.FirstError = 0, ""
	for _, x := range runs {
		r.Failed += x.Failed
		if r.FirstError == "" {
			r.FirstError = x.FirstError
		}
	}
	return r
}

func middle[T cmp.Ordered](runs []Report, field func(Report) T) T {
	v := make([]T, len(runs))
	for i, r := range runs {
		v[i] = field(r)
	}
	slices.Sort(v)
	return v[(len(v)-1)/2]
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

// WriteSVG writes a self-contained bar chart: for each report, a bar of its
// hit rate (left panel) and of its TTFT p99 (right panel).
func WriteSVG(w io.Writer, reports []Report, title string) error {
	const (
		rowH   = 26
		labelW = 230
		panelW = 300
		gap    = 60
		top    = 56
	)
	width := labelW + 2*panelW + gap + 80
	height := top + rowH*len(reports) + 30
	var maxTTFT time.Duration
	for _, r := range reports {
		maxTTFT = max(maxTTFT, r.TTFTP99)
	}
	if maxTTFT == 0 {
		maxTTFT = time.Millisecond
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	x1 := labelW
	x2 := labelW + panelW + gap
	fmt.Fprintf(&b, `<text x="%d" y="44">prefix-cache hit rate (higher is better)</text>`+"\n", x1)
	fmt.Fprintf(&b, `<text x="%d" y="44">TTFT p99 (lower is better)</text>`+"\n", x2)
	for i, r := range reports {
		y := top + i*rowH
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-10, y+15, html.EscapeString(r.Scenario))
		hw := int(float64(panelW) * r.HitRate)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#2b8a3e"/>`+"\n", x1, y+3, hw, rowH-8)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%.1f%%</text>`+"\n", x1+hw+4, y+15, 100*r.HitRate)
		tw := int(float64(panelW) * float64(r.TTFTP99) / float64(maxTTFT))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#c92a2a"/>`+"\n", x2, y+3, tw, rowH-8)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", x2+tw+4, y+15, ms(r.TTFTP99))
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", x1, top, x1, top+rowH*len(reports))
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", x2, top, x2, top+rowH*len(reports))
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
