package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"image/png"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvgate/kvgate/internal/syncbuf"
	"github.com/kvgate/kvgate/mtls"
	"github.com/kvgate/kvgate/sim"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

var update = flag.Bool("update", false, "rewrite testdata/report.golden.md")

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// collectRow runs `meshbench collect` with args and decodes its row.
func collectRow(t *testing.T, args ...string) Row {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), append([]string{"collect"}, args...), &out, &out); err != nil {
		t.Fatalf("collect %v: %v", args, err)
	}
	var r Row
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("collect printed %q: %v", out.String(), err)
	}
	return r
}

// TestCollectKubelet reads two recorded /metrics/resource scrapes: the
// ztunnel containers used 6 and 3 CPU-seconds over 100 s of the kubelet's
// own sample timestamps, so 0.09 vCPU at 999.2 req/s; the other containers
// (coredns, the test server) are not proxies and must not count.
func TestCollectKubelet(t *testing.T) {
	r := collectRow(t, "--load", "testdata/load-http.json", "--baseline", "testdata/load-baseline.json",
		"--data-plane", "Istio ztunnel", "--workload", "istio-1k",
		"--metrics-before", "testdata/kubelet-before.txt", "--metrics-after", "testdata/kubelet-after.txt",
		"--proxy", "istio-system/ztunnel-*/istio-proxy")
	if r.Proxies != 2 || !near(r.ProxyVCPU, 0.09) {
		t.Errorf("proxies %d, vCPU %v; want 2, 0.09", r.Proxies, r.ProxyVCPU)
	}
	if want := round3(0.09 / (999.2 / 1000)); !near(r.VCPUPer1k, want) {
		t.Errorf("vCPU per 1k req/s %v, want %v", r.VCPUPer1k, want)
	}
	if !near(r.ProxyMemMiB, 23) {
		t.Errorf("memory %v MiB, want 23 (12 + 11 MiB of working set)", r.ProxyMemMiB)
	}
	if r.AddedP99 == nil || !near(*r.AddedP99, round3(readP99(t, "testdata/load-http.json")-readP99(t, "testdata/load-baseline.json"))) {
		t.Errorf("added p99 %v", r.AddedP99)
	}
	if r.CPUSource != "kubelet /metrics/resource" || r.Setup != "cluster" {
		t.Errorf("source %q setup %q", r.CPUSource, r.Setup)
	}
}

func readP99(t *testing.T, file string) float64 {
	lr, err := readLoad(file)
	if err != nil {
		t.Fatal(err)
	}
	return lr.LatencyMs.P99
}

// TestCollectPodMetrics averages two recorded metrics.k8s.io samples of
// two linkerd-proxy containers (0.1402 and 0.1398 cores) and keeps the
// larger summed memory (18 MiB); the application containers do not count.
func TestCollectPodMetrics(t *testing.T) {
	r := collectRow(t, "--load", "testdata/load-chat.json", "--data-plane", "Linkerd", "--workload", "llm",
		"--pod-metrics", "testdata/podmetrics.json", "--proxy", "kvgate-mesh-linkerd/*/linkerd-proxy")
	if r.Proxies != 2 || !near(r.ProxyVCPU, 0.14) || !near(r.ProxyMemMiB, 18) {
		t.Errorf("proxies %d, vCPU %v, memory %v MiB; want 2, 0.14, 18", r.Proxies, r.ProxyVCPU, r.ProxyMemMiB)
	}
	if r.TTFT == nil || r.TTFT.P50 <= 0 {
		t.Errorf("the chat result's TTFT was lost: %+v", r.TTFT)
	}
}

func TestCollectLocal(t *testing.T) {
	r := collectRow(t, "--setup", "local", "--load", "testdata/load-http.json", "--baseline", "testdata/load-baseline.json",
		"--data-plane", "kvgate", "--workload", "istio-1k", "--cpu-seconds", "0.5", "--window", "2.5", "--mem-kib", "20480", "--procs", "2")
	if r.Proxies != 2 || !near(r.ProxyVCPU, 0.2) || !near(r.ProxyMemMiB, 20) || r.CPUSource != "proc" {
		t.Errorf("got %+v", r)
	}
}

func TestCollectRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"not a load result", []string{"--load", "testdata/podmetrics.json"}, "not a meshbench load result"},
		{"no proxy matched", []string{"--load", "testdata/load-http.json", "--metrics-before", "testdata/kubelet-before.txt", "--metrics-after", "testdata/kubelet-after.txt", "--proxy", "nowhere/*/*"}, "no container matched"},
		{"counter from the wrong file order", []string{"--load", "testdata/load-http.json", "--metrics-before", "testdata/kubelet-after.txt", "--metrics-after", "testdata/kubelet-before.txt", "--proxy", "istio-system/*/*"}, "timestamps"},
		{"one scrape only", []string{"--load", "testdata/load-http.json", "--metrics-before", "testdata/kubelet-before.txt"}, "both"},
		{"bad selector", []string{"--load", "testdata/load-http.json", "--proxy", "ztunnel"}, "NAMESPACE/POD/CONTAINER"},
		{"positional argument", []string{"--load", "testdata/load-http.json", "extra"}, "unexpected argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"collect", "--data-plane", "x", "--workload", "y"}, tc.args...)
			var out bytes.Buffer
			err := run(context.Background(), args, &out, &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParsePromLine(t *testing.T) {
	for _, tc := range []struct {
		line   string
		name   string
		labels map[string]string
		value  float64
		ts     int64
		bad    bool
	}{
		{line: `scrape_error 0`, name: "scrape_error"},
		{line: `a{x="1",y="two words"} 1.5e+03 1700000000000`, name: "a", labels: map[string]string{"x": "1", "y": "two words"}, value: 1500, ts: 1700000000000},
		{line: `a{x="q\"uote\\d",} 2`, name: "a", labels: map[string]string{"x": `q"uote\d`}, value: 2},
		{line: `a{} NaN`, name: "a", labels: map[string]string{}, value: math.NaN()},
		{line: `a{x="1"`, bad: true},
		{line: `a{x=1} 2`, bad: true},
		{line: `a{x="1} 2`, bad: true},
		{line: `a 1 2 3`, bad: true},
		{line: `a one`, bad: true},
		{line: `a 1 soon`, bad: true},
	} {
		s, err := parsePromLine(tc.line)
		if tc.bad {
			if err == nil {
				t.Errorf("%s: parsed as %+v, want an error", tc.line, s)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.line, err)
			continue
		}
		if s.name != tc.name || s.tsMs != tc.ts || len(s.labels) != len(tc.labels) ||
			!(s.value == tc.value || math.IsNaN(s.value) && math.IsNaN(tc.value)) {
			t.Errorf("%s: got %+v", tc.line, s)
		}
		for k, v := range tc.labels {
			if s.labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q", tc.line, k, s.labels[k], v)
			}
		}
	}
}

func FuzzParsePromText(f *testing.F) {
	for _, file := range []string{"testdata/kubelet-before.txt", "testdata/kubelet-after.txt"} {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Add(`a{x="\"} 1`)
	f.Fuzz(func(t *testing.T, text string) {
		ss, err := parsePromText(strings.NewReader(text))
		if err != nil {
			return
		}
		for _, s := range ss {
			if s.name == "" {
				t.Fatalf("a sample without a name from %q", text)
			}
		}
	})
}

func TestParseQuantity(t *testing.T) {
	for q, want := range map[string]float64{"250m": 0.25, "60215503n": 0.060215503, "12u": 12e-6, "2": 2, "9216Ki": 9216 * 1024, "8Mi": 8 << 20, "1Gi": 1 << 30, "3k": 3000} {
		got, err := parseQuantity(q)
		if err != nil || !near(got, want) {
			t.Errorf("%s: %v, %v; want %v", q, got, err, want)
		}
	}
	for _, q := range []string{"", "m", "-1", "1x", "Ki"} {
		if _, err := parseQuantity(q); err == nil {
			t.Errorf("%q parsed", q)
		}
	}
}

// TestReportGolden renders recorded rows into the table (compared with
// testdata/report.golden.md; -update rewrites it) and the chart, and
// checks that --check accepts the complete table.
func TestReportGolden(t *testing.T) {
	dir := t.TempDir()
	out, pngFile := filepath.Join(dir, "r.md"), filepath.Join(dir, "r.png")
	var buf bytes.Buffer
	err := run(context.Background(), []string{"report", "--rows", "testdata/rows.jsonl", "--out", out, "--png", pngFile, "--check",
		"--expect-workloads", "istio-1k", "--expect-data-planes", "no proxy,kvgate,haproxy,nginx"}, &buf, &buf)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	golden := "testdata/report.golden.md"
	if *update {
		os.WriteFile(golden, got, 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("table differs from %s (go test -run TestReportGolden -update to accept):\n%s", golden, got)
	}
	f, err := os.Open(pngFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("the chart is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 600 || b.Dy() < 4*22 {
		t.Errorf("chart is %v, too small for 4 rows", b)
	}
}

// TestReportCheck: --check names every gap: a missing pair, a proxied row
// without CPU, a row with errors, an LLM row without TTFT.
func TestReportCheck(t *testing.T) {
	rows := []Row{
		{Setup: "local", DataPlane: "kvgate", Workload: "istio-1k", Sent: 100, AchievedRate: 100, Latency: Percentiles{1, 2, 3, 4}, Proxies: 2, ProxyMemMiB: 10},
		{Setup: "cluster", DataPlane: "Linkerd", Workload: "llm", Sent: 100, Errors: 5, AchievedRate: 95, Latency: Percentiles{1, 2, 3, 4}},
		{Setup: "cluster", DataPlane: "none", Workload: "llm", Sent: 0},
	}
	p := strings.Join(checkRows(rows, []string{"kvgate", "Linkerd"}, []string{"istio-1k", "llm"}), "\n")
	for _, want := range []string{
		"istio-1k / kvgate: no proxy CPU measured",
		"istio-1k / kvgate: no added p90/p99",
		"llm / Linkerd: 5 of 100 requests failed",
		"llm / Linkerd: no time to first token",
		"llm / none: no request answered",
		"istio-1k / Linkerd: no row",
		"llm / kvgate: no row",
	} {
		if !strings.Contains(p, want) {
			t.Errorf("check output lacks %q:\n%s", want, p)
		}
	}
	if got := checkRows(rows[:0], nil, nil); len(got) != 0 {
		t.Errorf("no rows, no expectations: %v", got)
	}
}

// TestLoadServe runs the server and the load client on loopback: every
// scheduled request is sent and answered with 1 KiB.
func TestLoadServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, 1024) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	res, err := load(context.Background(), loadOpts{url: "http://" + ln.Addr().String() + "/1k", rate: 200, conns: 4,
		duration: 500 * time.Millisecond, warmup: 100 * time.Millisecond, timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 100 || res.OK != 100 || res.Errors != 0 || res.Status["200"] != 100 {
		t.Errorf("sent %d ok %d errors %d status %v; want 100 answered (warm-up excluded)", res.Sent, res.OK, res.Errors, res.Status)
	}
	if res.LatencyMs.P50 <= 0 || res.LatencyMs.Max < res.LatencyMs.P99 || res.AchievedRate <= 0 {
		t.Errorf("latency %+v rate %v", res.LatencyMs, res.AchievedRate)
	}
}

// TestLoadChat streams chat completions from the simulator and reads
// time to first token; a refused request (404 path) is counted as an
// error with its status.
func TestLoadChat(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.TimeScale = 0.05
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := sim.Start(ctx, "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := s.URL
	o := loadOpts{url: base + "/v1/chat/completions", rate: 40, conns: 4, duration: 250 * time.Millisecond, timeout: 5 * time.Second,
		chat: true, model: cfg.Model, maxTokens: 4, prompt: "hello"}
	res, err := load(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 10 || res.TTFTMs == nil || res.TTFTMs.P50 <= 0 || res.TTFTMs.P50 > res.LatencyMs.P50 {
		t.Errorf("ok %d (first error %q), ttft %+v, latency %+v", res.OK, res.FirstError, res.TTFTMs, res.LatencyMs)
	}
	o.url = base + "/nowhere"
	res, err = load(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 10 || res.Status["404"] != 10 || !strings.Contains(res.FirstError, "404") {
		t.Errorf("errors %d status %v first %q", res.Errors, res.Status, res.FirstError)
	}
}

func TestReadSSE(t *testing.T) {
	for _, tc := range []struct {
		stream string
		ok     bool
	}{
		{"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n", true},
		{"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n", false}, // cut before [DONE]
		{"data: {\"choices\":[]}\n\ndata: [DONE]\n\n", false},                 // no content
	} {
		_, err := readSSE(strings.NewReader(tc.stream))
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v", tc.stream, err)
		}
	}
}

// TestSPIFFE issues two identities and checks them with kvgate's own
// readers: the SVID files with mtls.NewSVIDFiles, the sockets with
// go-spiffe's Workload API client (what kvgate's identity.workloadAPI uses).
func TestSPIFFE(t *testing.T) {
	dir, err := os.MkdirTemp("", "mb") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(context.Background())
	var out syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"spiffe", "--dir", dir, "--id", "client=spiffe://mesh.local/ns/bench/sa/client",
			"--id", "server=spiffe://mesh.local/ns/bench/sa/server", "--dns", "localhost"}, &out, &out)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "serving") {
		if time.Now().After(deadline) {
			t.Fatalf("not serving: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	files, err := mtls.NewSVIDFiles(ctx, filepath.Join(dir, "client"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	sv, err := files.GetX509SVID()
	if err != nil || sv.ID.String() != "spiffe://mesh.local/ns/bench/sa/client" || sv.Certificates[0].DNSNames[0] != "localhost" {
		t.Fatalf("files: %v %v", sv, err)
	}
	src, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr("unix://"+filepath.Join(dir, "server.sock"))))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got, err := src.GetX509SVID()
	if err != nil || got.ID.String() != "spiffe://mesh.local/ns/bench/sa/server" {
		t.Fatalf("workload API: %v %v", got, err)
	}
	b, err := src.GetX509BundleForTrustDomain(got.ID.TrustDomain())
	if err != nil || len(b.X509Authorities()) != 1 {
		t.Fatalf("bundle %v %v", b, err)
	}
	if err := got.Certificates[0].CheckSignatureFrom(b.X509Authorities()[0]); err != nil {
		t.Errorf("the server SVID is not signed by the served bundle: %v", err)
	}
}

func TestCLI(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
		want string
	}{
		{[]string{"--help"}, true, "commands:"},
		{[]string{"load", "--help"}, true, "-rate"},
		{[]string{"report", "-h"}, true, "-check"},
		{nil, false, "no command"},
		{[]string{"bogus"}, false, "unknown command"},
		{[]string{"load"}, false, "--url is required"},
		{[]string{"load", "--url", "https://x/"}, false, "http://HOST:PORT/PATH"},
		{[]string{"load", "--url", "http://x/", "--rate", "0"}, false, "--rate"},
		{[]string{"load", "--url", "http://x/", "--nope"}, false, "flag provided but not defined"},
		{[]string{"spiffe", "--dir", "d", "--id", "a=spiffe://one/x", "--id", "b=spiffe://two/y"}, false, "one trust domain"},
		{[]string{"spiffe", "--dir", "d", "--id", "a/b=spiffe://one/x"}, false, "plain file name"},
		{[]string{"report"}, false, "--rows is required"},
	} {
		var out bytes.Buffer
		err := run(context.Background(), tc.args, &out, &out)
		if (err == nil) != tc.ok {
			t.Errorf("%v: err %v", tc.args, err)
			continue
		}
		text := out.String()
		if err != nil {
			text += err.Error()
		}
		if !strings.Contains(text, tc.want) {
			t.Errorf("%v: %q lacks %q", tc.args, text, tc.want)
		}
	}
}
