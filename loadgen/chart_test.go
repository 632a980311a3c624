package loadgen

import (
	"encoding/xml"
	"strings"
	"testing"
	"time"
)

// The replay chart is well-formed SVG with one row of three bars per
// report, each TTFT panel scaled to its largest bar, the hit rate to 100%,
// and the title and picker names escaped.
func TestWriteLatencySVG(t *testing.T) {
	reports := []Report{
		{Scenario: "latency <new>", HitRate: 0.5, TTFTP50: 100 * time.Millisecond, TTFTP99: 400 * time.Millisecond},
		{Scenario: "round-robin", HitRate: 1.5, TTFTP50: 200 * time.Millisecond, TTFTP99: 200 * time.Millisecond},
	}
	var b strings.Builder
	if err := WriteLatencySVG(&b, reports, "A & B"); err != nil {
		t.Fatal(err)
	}
	type rect struct {
		Width string `xml:"width,attr"`
		Fill  string `xml:"fill,attr"`
	}
	var doc struct {
		XMLName xml.Name `xml:"svg"`
		Rects   []rect   `xml:"rect"`
		Texts   []string `xml:"text"`
	}
	if err := xml.Unmarshal([]byte(b.String()), &doc); err != nil {
		t.Fatalf("not well-formed SVG: %v\n%s", err, b.String())
	}
	var widths []string
	for _, r := range doc.Rects[1:] { // the first is the background
		widths = append(widths, r.Width)
	}
	// panelW is 230: hit rate 50% is half a panel and 150% is clamped to
	// one; p50 100 of 200 ms is half; p99 200 of 400 ms is half.
	want := []string{"115", "115", "230", "230", "230", "115"}
	if strings.Join(widths, " ") != strings.Join(want, " ") {
		t.Errorf("bar widths %v, want %v", widths, want)
	}
	texts := strings.Join(doc.Texts, "|")
	for _, s := range []string{"A & B", "latency <new>", "round-robin", "50.0%"} {
		if !strings.Contains(texts, s) {
			t.Errorf("chart text lacks %q: %s", s, texts)
		}
	}
}
