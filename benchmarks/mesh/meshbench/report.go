package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"os"
	"strings"
)

type reportOpts struct {
	rows       string
	out, png   string
	title      string
	check      bool
	dataPlanes string
	workloads  string
}

func (o *reportOpts) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.StringVar(&o.rows, "rows", "", "`FILE` of result rows, one JSON object a line (meshbench collect output)")
	fs.StringVar(&o.out, "out", "", "write the Markdown table to `FILE` (default stdout)")
	fs.StringVar(&o.png, "png", "", "also draw the chart into `FILE` (PNG)")
	fs.StringVar(&o.title, "title", "kvgate mesh benchmark", "the chart's title")
	fs.BoolVar(&o.check, "check", false, "fail unless every row is complete (rate, latency, and CPU, memory and added latency where a proxy ran)")
	fs.StringVar(&o.dataPlanes, "expect-data-planes", "", "with --check: comma-separated data planes every workload must have a row for")
	fs.StringVar(&o.workloads, "expect-workloads", "", "with --check: comma-separated workloads every data plane must have a row for")
	return fs
}

func runReport(_ context.Context, args []string, stdout io.Writer) error {
	var o reportOpts
	if err := parseFlags(o.flagSet(), args, stdout); err != nil {
		return err
	}
	if o.rows == "" {
		return usageError{"report: --rows is required"}
	}
	rows, err := readRows(o.rows)
	if err != nil {
		return err
	}
	var md bytes.Buffer
	writeTable(&md, rows)
	if o.out == "" {
		if _, err := stdout.Write(md.Bytes()); err != nil {
			return err
		}
	} else if err := os.WriteFile(o.out, md.Bytes(), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if o.png != "" {
		f, err := os.Create(o.png)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		err = png.Encode(f, chart(rows, o.title))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("report: %s: %w", o.png, err)
		}
	}
	if o.check {
		if problems := checkRows(rows, splitList(o.dataPlanes), splitList(o.workloads)); len(problems) > 0 {
			return fmt.Errorf("report: the table is incomplete:\n  %s", strings.Join(problems, "\n  "))
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func readRows(file string) ([]Row, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	var rows []Row
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		var r Row
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("report: %s:%d: not a result row: %w", file, n, err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("report: %s: %w", file, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("report: %s holds no rows", file)
	}
	return rows, nil
}

// tableHeader is the one layout every data plane and both setups share,
// so that two runs' tables can be put side by side.
const tableHeader = "| workload | data plane | target req/s | achieved req/s | errors | p50 ms | p90 ms | p99 ms | max ms | added p90 ms | added p99 ms | TTFT p50 ms | TTFT p99 ms | proxies | proxy vCPU | vCPU per 1k req/s | proxy MiB |\n" +
	"|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"

func writeTable(w io.Writer, rows []Row) {
	io.WriteString(w, tableHeader)
	for _, r := range rows {
		ttft50, ttft99 := "-", "-"
		if r.TTFT != nil {
			ttft50, ttft99 = ms(r.TTFT.P50), ms(r.TTFT.P99)
		}
		cpu, per1k, mem := "-", "-", "-"
		if r.Proxies > 0 {
			cpu, per1k, mem = fmt.Sprintf("%.3f", r.ProxyVCPU), fmt.Sprintf("%.3f", r.VCPUPer1k), fmt.Sprintf("%.1f", r.ProxyMemMiB)
		}
		dp := r.DataPlane
		if r.Note != "" {
			dp += " (" + r.Note + ")"
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %.1f | %d | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s | %s | %s |\n",
			esc(r.Workload), esc(dp), r.TargetRate, r.AchievedRate, r.Errors,
			ms(r.Latency.P50), ms(r.Latency.P90), ms(r.Latency.P99), ms(r.Latency.Max),
			optMs(r.AddedP90), optMs(r.AddedP99), ttft50, ttft99, r.Proxies, cpu, per1k, mem)
	}
}

func esc(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func ms(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func optMs(v *float64) string {
	if v == nil {
		return "-"
	}
	return ms(*v)
}

// checkRows lists what makes the table incomplete: a row without an
// achieved rate or latency, with more than 1 % errors, a proxied row
// without CPU, memory or (locally) added latency, a chat row without TTFT,
// and a missing workload × data plane pair.
func checkRows(rows []Row, dataPlanes, workloads []string) []string {
	var p []string
	have := map[[2]string]bool{}
	for _, r := range rows {
		id := r.Workload + " / " + r.DataPlane
		have[[2]string{r.Workload, r.DataPlane}] = true
		if r.Sent == 0 || r.AchievedRate <= 0 {
			p = append(p, id+": no request answered")
			continue
		}
		if r.Errors*100 > r.Sent {
			p = append(p, fmt.Sprintf("%s: %d of %d requests failed (first: %s)", id, r.Errors, r.Sent, r.FirstError))
		}
		if r.Latency.P50 <= 0 || r.Latency.P99 < r.Latency.P50 {
			p = append(p, id+": no latency percentiles")
		}
		if r.Proxies > 0 {
			if r.ProxyVCPU <= 0 || r.VCPUPer1k <= 0 {
				p = append(p, id+": no proxy CPU measured")
			}
			if r.ProxyMemMiB <= 0 {
				p = append(p, id+": no proxy memory measured")
			}
			if r.Setup == "local" && (r.AddedP90 == nil || r.AddedP99 == nil) {
				p = append(p, id+": no added p90/p99 (no baseline run)")
			}
		}
		if strings.HasPrefix(r.Workload, "llm") && (r.TTFT == nil || r.TTFT.P50 <= 0) {
			p = append(p, id+": no time to first token")
		}
	}
	for _, w := range workloads {
		for _, d := range dataPlanes {
			if !have[[2]string{w, d}] {
				p = append(p, fmt.Sprintf("%s / %s: no row", w, d))
			}
		}
	}
	return p
}

var palette = []color.RGBA{
	{0x4e, 0x79, 0xa7, 0xff}, {0xf2, 0x8e, 0x2b, 0xff}, {0xe1, 0x57, 0x59, 0xff}, {0x76, 0xb7, 0xb2, 0xff},
	{0x59, 0xa1, 0x4f, 0xff}, {0xed, 0xc9, 0x48, 0xff}, {0xb0, 0x7a, 0xa1, 0xff}, {0x9c, 0x75, 0x5f, 0xff},
}

// chart draws two bar panels side by side, one bar per row in table order:
// client p99 latency (TTFT p99 for chat rows) and proxy vCPU per 1,000
// req/s. Bars are coloured by data plane, the same layout for every run.
func chart(rows []Row, title string) *image.RGBA {
	const (
		scale  = 2
		rowH   = 22
		top    = 70
		panelW = 360
		gap    = 40
		margin = 16
	)
	label := func(r Row) string { return r.Workload + " | " + r.DataPlane }
	labelW := 0
	for _, r := range rows {
		labelW = max(labelW, textWidth(label(r), scale))
	}
	valW := textWidth("0000.000", scale)
	width := margin + labelW + gap + 2*(panelW+valW+gap) + margin
	height := top + len(rows)*rowH + 40
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	black := color.RGBA{0x20, 0x20, 0x20, 0xff}
	grey := color.RGBA{0xc8, 0xc8, 0xc8, 0xff}
	drawText(img, margin, 10, scale, title, black)

	colors := map[string]color.RGBA{}
	for _, r := range rows {
		if _, ok := colors[r.DataPlane]; !ok {
			colors[r.DataPlane] = palette[len(colors)%len(palette)]
		}
	}
	latency := func(r Row) float64 {
		if r.TTFT != nil {
			return r.TTFT.P99
		}
		return r.Latency.P99
	}
	cpu := func(r Row) float64 { return r.VCPUPer1k }
	panels := []struct {
		name string
		val  func(Row) float64
		fmt  string
	}{{"P99 LATENCY MS (LLM: TTFT P99)", latency, "%.2f"}, {"PROXY VCPU PER 1000 REQ/S", cpu, "%.3f"}}
	x0 := margin + labelW + gap
	for _, p := range panels {
		maxV := 0.0
		for _, r := range rows {
			maxV = max(maxV, p.val(r))
		}
		drawText(img, x0, 40, scale, p.name, black)
		for y := top - 4; y < top+len(rows)*rowH; y++ {
			img.Set(x0, y, grey)
		}
		for i, r := range rows {
			y := top + i*rowH
			v := p.val(r)
			w := 0
			if maxV > 0 {
				w = int(v / maxV * panelW)
			}
			draw.Draw(img, image.Rect(x0+1, y, x0+1+w, y+rowH-6), image.NewUniform(colors[r.DataPlane]), image.Point{}, draw.Src)
			txt := fmt.Sprintf(p.fmt, v)
			if v == 0 {
				txt = "-"
			}
			drawText(img, x0+w+6, y+2, scale, txt, black)
		}
		x0 += panelW + valW + gap
	}
	for i, r := range rows {
		drawText(img, margin, top+i*rowH+2, scale, label(r), black)
	}
	drawText(img, margin, height-26, scale, "ROWS IN TABLE ORDER; COLOUR = DATA PLANE; SEE THE MARKDOWN TABLE FOR EVERY COLUMN", color.RGBA{0x60, 0x60, 0x60, 0xff})
	return img
}
