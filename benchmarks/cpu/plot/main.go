// Command plot draws the CPU-per-request chart of benchmarks/cpu as SVG: one
// line per proxy, request rate on a logarithmic x axis, CPU-milliseconds per
// request on the y axis. It reads "proxy rate cpu-ms" lines on stdin (a "-"
// value is skipped) and writes the SVG to stdout; run.sh renders it to PNG
// with headless Chromium.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

type point struct{ rate, cpu float64 }

func main() {
	title := flag.String("title", "CPU per request", "chart `TITLE`")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "plot: unexpected argument", flag.Arg(0), "(input is read from stdin)")
		os.Exit(2)
	}
	series, order, err := read(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "plot:", err)
		os.Exit(1)
	}
	if err := svg(os.Stdout, *title, series, order); err != nil {
		fmt.Fprintln(os.Stderr, "plot:", err)
		os.Exit(1)
	}
}

func read(r io.Reader) (map[string][]point, []string, error) {
	series := map[string][]point{}
	var order []string
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, nil, fmt.Errorf("line %d: want \"proxy rate cpu-ms\", got %q", n, sc.Text())
		}
		if f[2] == "-" {
			continue
		}
		rate, err1 := strconv.ParseFloat(f[1], 64)
		cpu, err2 := strconv.ParseFloat(f[2], 64)
		if err1 != nil || err2 != nil || rate <= 0 || cpu < 0 {
			return nil, nil, fmt.Errorf("line %d: rate and cpu-ms must be positive numbers, got %q", n, sc.Text())
		}
		if _, ok := series[f[0]]; !ok {
			order = append(order, f[0])
		}
		series[f[0]] = append(series[f[0]], point{rate, cpu})
	}
	return series, order, sc.Err()
}

var colors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"}

func svg(w io.Writer, title string, series map[string][]point, order []string) error {
	const W, H, left, right, top, bottom = 800, 500, 80, 150, 50, 60
	pw, ph := float64(W-left-right), float64(H-top-bottom)
	minR, maxR, maxC := math.Inf(1), math.Inf(-1), 0.0
	for _, pts := range series {
		for _, p := range pts {
			minR, maxR, maxC = math.Min(minR, p.rate), math.Max(maxR, p.rate), math.Max(maxC, p.cpu)
		}
	}
	if len(series) == 0 {
		return fmt.Errorf("no data points")
	}
	if minR == maxR {
		minR, maxR = minR/2, maxR*2
	}
	lo, hi := math.Log10(minR)-0.1, math.Log10(maxR)+0.1
	yMax := niceCeil(maxC * 1.1)
	x := func(r float64) float64 { return left + (math.Log10(r)-lo)/(hi-lo)*pw }
	y := func(c float64) float64 { return top + ph - c/yMax*ph }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="13">`+"\n", W, H)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", W, H)
	fmt.Fprintf(&b, `<text x="%d" y="28" font-size="16" font-weight="bold">%s</text>`+"\n", left, esc(title))
	for i := 0; i <= 5; i++ {
		c := yMax * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, left+pw, y(c), y(c))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%.3f</text>`+"\n", left-8, y(c)+4, c)
	}
	var ticks []float64
	for _, pts := range series {
		for _, p := range pts {
			if !slices.Contains(ticks, p.rate) {
				ticks = append(ticks, p.rate)
			}
		}
	}
	for _, r := range ticks {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%.1f" stroke="#eee"/>`+"\n", x(r), x(r), top, top+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%g</text>`+"\n", x(r), top+ph+20, r)
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">request rate, req/s (log scale)</text>`+"\n", left+pw/2, H-15)
	fmt.Fprintf(&b, `<text transform="translate(22 %.1f) rotate(-90)" text-anchor="middle">proxy CPU-ms per request</text>`+"\n", top+ph/2)
	for i, name := range order {
		pts := slices.Clone(series[name])
		slices.SortFunc(pts, func(a, b point) int { return int(math.Copysign(1, a.rate-b.rate)) })
		col := colors[i%len(colors)]
		var path strings.Builder
		for j, p := range pts {
			fmt.Fprintf(&path, "%s%.1f,%.1f ", map[bool]string{true: "M", false: "L"}[j == 0], x(p.rate), y(p.cpu))
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2.5"/>`+"\n", strings.TrimSpace(path.String()), col)
		for _, p := range pts {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"/>`+"\n", x(p.rate), y(p.cpu), col)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" fill="%s">%.3f</text>`+"\n", x(p.rate)+6, y(p.cpu)-6, col, p.cpu)
		}
		ly := top + 20 + 24*i
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", left+pw+15, left+pw+40, ly, ly, col)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", left+pw+46, ly+4, esc(name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
