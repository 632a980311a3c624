package admin

import (
	"strings"
	"testing"

	"github.com/kvgate/kvgate/proxy"
)

// TestChart: lines join consecutive seconds, a gap breaks them, a lone
// second is a dot, and the legend shows the last value.
func TestChart(t *testing.T) {
	s := []proxy.Sample{{Requests: 1, TTFTMs: 10}, {Requests: 2, TTFTMs: 20}, {TTFTMs: -1}, {Requests: 4, TTFTMs: 40}, {TTFTMs: -1}}
	got := string(chart(s, "ttft"))
	for _, want := range []string{`d="M0.0 `, "L75.0 ", "h0.01", "<b>40.0 ms</b>", "max 40.0 ms", `aria-label="mean time to first token over the last 5 seconds"`} {
		if !strings.Contains(got, want) {
			t.Errorf("chart lacks %q:\n%s", want, got)
		}
	}
	if got := string(chart(nil, "rps")); strings.Contains(got, "<path") || !strings.Contains(got, "<b>–</b>") {
		t.Errorf("empty chart: %s", got)
	}
}
