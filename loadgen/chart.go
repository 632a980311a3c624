package loadgen

import (
	"fmt"
	"html"
	"io"
	"strings"
	"time"
)

// WriteLatencySVG writes a self-contained bar chart with three panels per
// report: prefix-cache hit rate, TTFT p50 and TTFT p99 (each TTFT panel
// scaled to its own largest bar). It is the chart of a workload's results
// in benchmarks/RESULTS.md (rendered to PNG there).
func WriteLatencySVG(w io.Writer, reports []Report, title string) error {
	const (
		rowH   = 24
		labelW = 260
		panelW = 230
		gap    = 70
		top    = 56
	)
	width := labelW + 3*panelW + 2*gap + 70
	height := top + rowH*len(reports) + 24
	var max50, max99 time.Duration
	for _, r := range reports {
		max50, max99 = max(max50, r.TTFTP50), max(max99, r.TTFTP99)
	}
	max50, max99 = max(max50, time.Millisecond), max(max99, time.Millisecond)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	xs := [3]int{labelW, labelW + panelW + gap, labelW + 2*(panelW+gap)}
	heads := [3]string{"prefix-cache hit rate (higher is better)", "TTFT p50 (lower is better)", "TTFT p99 (lower is better)"}
	colors := [3]string{"#2b8a3e", "#e67700", "#c92a2a"}
	for k, x := range xs {
		fmt.Fprintf(&b, `<text x="%d" y="44">%s</text>`+"\n", x, heads[k])
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", x, top, x, top+rowH*len(reports))
	}
	for i, r := range reports {
		y := top + i*rowH
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-10, y+15, html.EscapeString(r.Scenario))
		fr := [3]float64{r.HitRate, float64(r.TTFTP50) / float64(max50), float64(r.TTFTP99) / float64(max99)}
		labels := [3]string{fmt.Sprintf("%.1f%%", 100*r.HitRate), ms(r.TTFTP50), ms(r.TTFTP99)}
		for k, x := range xs {
			bw := int(float64(panelW) * min(max(fr[k], 0), 1))
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", x, y+3, bw, rowH-8, colors[k])
			fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", x+bw+4, y+15, labels[k])
		}
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
