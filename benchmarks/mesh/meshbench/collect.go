package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Row is one line of the result table: one data plane under one workload.
// run.sh writes one per run (meshbench collect) into rows.jsonl; meshbench
// report renders them.
type Row struct {
	Setup        string       `json:"setup"`     // local | cluster
	DataPlane    string       `json:"dataPlane"` // e.g. "kvgate", "Istio ztunnel"
	Workload     string       `json:"workload"`  // e.g. "istio-1k", "linkerd-200", "llm"
	TargetRate   float64      `json:"targetRate"`
	AchievedRate float64      `json:"achievedRate"`
	Sent         int          `json:"sent"`
	Errors       int          `json:"errors"`
	FirstError   string       `json:"firstError,omitempty"`
	DurationS    float64      `json:"durationS"`
	Latency      Percentiles  `json:"latencyMs"`
	TTFT         *Percentiles `json:"ttftMs,omitempty"`
	// AddedP90 and AddedP99 are this row's percentiles minus the baseline's
	// (the same workload with no proxy), in ms; nil without a baseline.
	AddedP90 *float64 `json:"addedP90Ms,omitempty"`
	AddedP99 *float64 `json:"addedP99Ms,omitempty"`
	// Proxies is how many proxy processes or containers were counted; 0
	// means none (the no-mesh row), and the CPU fields are then 0.
	Proxies int `json:"proxies"`
	// ProxyVCPU is the proxies' CPU time per second of the window, summed.
	ProxyVCPU float64 `json:"proxyVCPU"`
	// VCPUPer1k is ProxyVCPU per 1,000 achieved requests per second.
	VCPUPer1k float64 `json:"vcpuPer1kRps"`
	// ProxyMemMiB is the proxies' memory summed: working set (cluster) or
	// peak RSS (local).
	ProxyMemMiB float64 `json:"proxyMemMiB"`
	CPUSource   string  `json:"cpuSource,omitempty"` // proc | kubelet /metrics/resource | metrics.k8s.io
	Note        string  `json:"note,omitempty"`
}

// selectors is the repeated --proxy NAMESPACE/POD/CONTAINER flag (globs).
type selectors []string

func (s *selectors) String() string { return strings.Join(*s, ",") }
func (s *selectors) Set(v string) error {
	parts := strings.Split(v, "/")
	if len(parts) != 3 {
		return fmt.Errorf("%q: write NAMESPACE/POD/CONTAINER, each a glob (e.g. istio-system/ztunnel-*/istio-proxy)", v)
	}
	for _, p := range parts {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("%q: %v", v, err)
		}
	}
	*s = append(*s, v)
	return nil
}

func (s selectors) match(ns, pod, ctr string) bool {
	for _, sel := range s {
		p := strings.Split(sel, "/")
		a, _ := path.Match(p[0], ns)
		b, _ := path.Match(p[1], pod)
		c, _ := path.Match(p[2], ctr)
		if a && b && c {
			return true
		}
	}
	return false
}

type collectOpts struct {
	load, baseline         string
	setup, dataPlane, work string
	note                   string
	cpuSeconds, window     float64
	memKiB                 float64
	procs                  int
	before, after          string
	podMetrics             string
	proxies                selectors
}

func (o *collectOpts) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("collect", flag.ContinueOnError)
	fs.StringVar(&o.load, "load", "", "`FILE` with the meshbench load result of the run")
	fs.StringVar(&o.baseline, "baseline", "", "`FILE` with the load result of the same workload without a proxy (for added p90/p99)")
	fs.StringVar(&o.setup, "setup", "cluster", "local | cluster")
	fs.StringVar(&o.dataPlane, "data-plane", "", "data plane `NAME` for the table")
	fs.StringVar(&o.work, "workload", "", "workload `NAME` for the table")
	fs.StringVar(&o.note, "note", "", "a note for the row")
	fs.Float64Var(&o.cpuSeconds, "cpu-seconds", -1, "local: proxy CPU `SECONDS` over the window (utime+stime from /proc)")
	fs.Float64Var(&o.window, "window", 0, "local: the window's wall-clock `SECONDS` (default: the load's duration)")
	fs.Float64Var(&o.memKiB, "mem-kib", 0, "local: proxy peak RSS in `KiB`, summed")
	fs.IntVar(&o.procs, "procs", 0, "local: how many proxy processes the CPU covers")
	fs.StringVar(&o.before, "metrics-before", "", "cluster: kubelet /metrics/resource `FILE` scraped early in the run (nodes concatenated)")
	fs.StringVar(&o.after, "metrics-after", "", "cluster: the same scraped late in the run")
	fs.StringVar(&o.podMetrics, "pod-metrics", "", "cluster: `FILE` of metrics.k8s.io PodMetricsList samples taken during the run (used when the kubelet files are not given)")
	fs.Var(&o.proxies, "proxy", "cluster: proxy containers as `NAMESPACE/POD/CONTAINER` globs (repeat); none = no proxy")
	return fs
}

func runCollect(_ context.Context, args []string, stdout io.Writer) error {
	var o collectOpts
	if err := parseFlags(o.flagSet(), args, stdout); err != nil {
		return err
	}
	if o.load == "" || o.dataPlane == "" || o.work == "" {
		return usageError{"collect: --load, --data-plane and --workload are required"}
	}
	row, err := collect(o)
	if err != nil {
		return err
	}
	b, err := json.Marshal(row)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

func readLoad(file string) (*LoadResult, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("collect: %w", err)
	}
	var r LoadResult
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("collect: %s: not a meshbench load result: %w", file, err)
	}
	if r.Tool != "meshbench load" {
		return nil, fmt.Errorf("collect: %s: not a meshbench load result (tool %q)", file, r.Tool)
	}
	return &r, nil
}

func collect(o collectOpts) (*Row, error) {
	lr, err := readLoad(o.load)
	if err != nil {
		return nil, err
	}
	row := &Row{Setup: o.setup, DataPlane: o.dataPlane, Workload: o.work, TargetRate: lr.TargetRate,
		AchievedRate: lr.AchievedRate, Sent: lr.Sent, Errors: lr.Errors, FirstError: lr.FirstError,
		DurationS: lr.DurationS, Latency: lr.LatencyMs, TTFT: lr.TTFTMs, Note: o.note}
	if o.baseline != "" {
		b, err := readLoad(o.baseline)
		if err != nil {
			return nil, err
		}
		p90 := round3(lr.LatencyMs.P90 - b.LatencyMs.P90)
		p99 := round3(lr.LatencyMs.P99 - b.LatencyMs.P99)
		row.AddedP90, row.AddedP99 = &p90, &p99
	}
	switch {
	case o.cpuSeconds >= 0:
		w := o.window
		if w <= 0 {
			w = lr.DurationS
		}
		row.CPUSource = "proc"
		row.Proxies = o.procs
		row.ProxyVCPU = o.cpuSeconds / w
		row.ProxyMemMiB = o.memKiB / 1024
	case o.before != "" || o.after != "":
		if o.before == "" || o.after == "" {
			return nil, errors.New("collect: give both --metrics-before and --metrics-after")
		}
		u, err := kubeletUsage(o.before, o.after, o.proxies)
		if err != nil {
			return nil, err
		}
		row.CPUSource = "kubelet /metrics/resource"
		row.Proxies, row.ProxyVCPU, row.ProxyMemMiB = u.containers, u.vcpu, u.memBytes/(1<<20)
	case o.podMetrics != "":
		u, err := podMetricsUsage(o.podMetrics, o.proxies)
		if err != nil {
			return nil, err
		}
		row.CPUSource = "metrics.k8s.io"
		row.Proxies, row.ProxyVCPU, row.ProxyMemMiB = u.containers, u.vcpu, u.memBytes/(1<<20)
	}
	if len(o.proxies) > 0 && row.Proxies == 0 && o.cpuSeconds < 0 {
		return nil, fmt.Errorf("collect: no container matched --proxy %s in the metrics: check the selectors against `kubectl get pods -A`", o.proxies.String())
	}
	if row.AchievedRate > 0 {
		row.VCPUPer1k = round3(row.ProxyVCPU / (row.AchievedRate / 1000))
	}
	row.ProxyVCPU = round3(row.ProxyVCPU)
	row.ProxyMemMiB = math.Round(row.ProxyMemMiB*10) / 10
	return row, nil
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// resUsage is the proxies' summed resource use.
type resUsage struct {
	containers int
	vcpu       float64 // cores
	memBytes   float64
}

// sample is one series value of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
	tsMs   int64 // 0 when the line has no timestamp
}

// parsePromText parses the Prometheus text exposition format (what the
// kubelet's /metrics/resource serves): comments and blank lines are
// skipped; every other line must be NAME{LABELS} VALUE [TIMESTAMP].
func parsePromText(r io.Reader) ([]sample, error) {
	var out []sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parsePromLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func parsePromLine(line string) (sample, error) {
	var s sample
	i := strings.IndexAny(line, "{ \t")
	if i <= 0 {
		return s, fmt.Errorf("%q: no value", line)
	}
	s.name = line[:i]
	rest := line[i:]
	if rest[0] == '{' {
		s.labels = map[string]string{}
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " ,")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq <= 0 || len(rest) < eq+2 || rest[eq+1] != '"' {
				return s, fmt.Errorf("%q: bad label", line)
			}
			key := strings.TrimSpace(rest[:eq])
			rest = rest[eq+2:]
			var val strings.Builder
			closed := false
			for j := 0; j < len(rest); j++ {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(rest[j])
					}
					continue
				}
				if c == '"' {
					rest = rest[j+1:]
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return s, fmt.Errorf("%q: unterminated label value", line)
			}
			s.labels[key] = val.String()
		}
	}
	f := strings.Fields(rest)
	if len(f) < 1 || len(f) > 2 {
		return s, fmt.Errorf("%q: want VALUE [TIMESTAMP] after the name", line)
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return s, fmt.Errorf("%q: value: %w", line, err)
	}
	s.value = v
	if len(f) == 2 {
		if s.tsMs, err = strconv.ParseInt(f[1], 10, 64); err != nil {
			return s, fmt.Errorf("%q: timestamp: %w", line, err)
		}
	}
	return s, nil
}

type ctrKey struct{ ns, pod, ctr string }

func readProm(file string) (map[ctrKey]sample, map[ctrKey]sample, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, fmt.Errorf("collect: %w", err)
	}
	defer f.Close()
	ss, err := parsePromText(f)
	if err != nil {
		return nil, nil, fmt.Errorf("collect: %s: %w", file, err)
	}
	cpu, mem := map[ctrKey]sample{}, map[ctrKey]sample{}
	for _, s := range ss {
		k := ctrKey{s.labels["namespace"], s.labels["pod"], s.labels["container"]}
		switch s.name {
		case "container_cpu_usage_seconds_total":
			cpu[k] = s
		case "container_memory_working_set_bytes":
			mem[k] = s
		}
	}
	return cpu, mem, nil
}

// kubeletUsage is the CPU rate between two scrapes of the kubelets'
// /metrics/resource (Δ container_cpu_usage_seconds_total over Δ of the
// samples' own timestamps, so the kubelet's collection times count, not
// the scrapes'), and the working set of the later scrape, summed over the
// selected containers.
func kubeletUsage(beforeFile, afterFile string, sel selectors) (resUsage, error) {
	var u resUsage
	b, _, err := readProm(beforeFile)
	if err != nil {
		return u, err
	}
	a, mem, err := readProm(afterFile)
	if err != nil {
		return u, err
	}
	keys := make([]ctrKey, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
	for _, k := range keys {
		if !sel.match(k.ns, k.pod, k.ctr) {
			continue
		}
		s1, s0 := a[k], b[k]
		if _, ok := b[k]; !ok {
			return u, fmt.Errorf("collect: %s/%s/%s is in %s but not in %s (did it restart during the run?)", k.ns, k.pod, k.ctr, afterFile, beforeFile)
		}
		dt := float64(s1.tsMs-s0.tsMs) / 1000
		if s1.tsMs == 0 || s0.tsMs == 0 || dt <= 0 {
			return u, fmt.Errorf("collect: %s/%s/%s: the two samples carry no increasing timestamps (%d, %d): scrape later, the kubelet had not collected again", k.ns, k.pod, k.ctr, s0.tsMs, s1.tsMs)
		}
		d := s1.value - s0.value
		if d < 0 {
			return u, fmt.Errorf("collect: %s/%s/%s: CPU counter went down (restart?)", k.ns, k.pod, k.ctr)
		}
		u.containers++
		u.vcpu += d / dt
		u.memBytes += mem[k].value
	}
	return u, nil
}

// podMetrics is the part of a metrics.k8s.io/v1beta1 PodMetricsList read here.
type podMetrics struct {
	Kind  string `json:"kind"`
	Items []struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Containers []struct {
			Name  string `json:"name"`
			Usage struct {
				CPU    string `json:"cpu"`
				Memory string `json:"memory"`
			} `json:"usage"`
		} `json:"containers"`
	} `json:"items"`
}

// podMetricsUsage averages the CPU usage of the selected containers over
// every PodMetricsList in file (JSON documents one after another, one per
// sample) and takes the largest summed memory of one sample. metrics-server
// reports a rate over its own window (15 s by default), so samples should be
// spread over the run.
func podMetricsUsage(file string, sel selectors) (resUsage, error) {
	var u resUsage
	data, err := os.ReadFile(file)
	if err != nil {
		return u, fmt.Errorf("collect: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var cpuSum float64
	n := 0
	ctrs := map[ctrKey]bool{}
	for {
		var pm podMetrics
		if err := dec.Decode(&pm); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return u, fmt.Errorf("collect: %s: sample %d: %w", file, n+1, err)
		}
		if pm.Kind != "PodMetricsList" {
			return u, fmt.Errorf("collect: %s: sample %d is a %q, not a PodMetricsList", file, n+1, pm.Kind)
		}
		n++
		var cpu, mem float64
		for _, it := range pm.Items {
			for _, c := range it.Containers {
				if !sel.match(it.Metadata.Namespace, it.Metadata.Name, c.Name) {
					continue
				}
				cv, err := parseQuantity(c.Usage.CPU)
				if err != nil {
					return u, fmt.Errorf("collect: %s: %s/%s cpu: %w", file, it.Metadata.Name, c.Name, err)
				}
				mv, err := parseQuantity(c.Usage.Memory)
				if err != nil {
					return u, fmt.Errorf("collect: %s: %s/%s memory: %w", file, it.Metadata.Name, c.Name, err)
				}
				cpu += cv
				mem += mv
				ctrs[ctrKey{it.Metadata.Namespace, it.Metadata.Name, c.Name}] = true
			}
		}
		cpuSum += cpu
		u.memBytes = max(u.memBytes, mem)
	}
	if n == 0 {
		return u, fmt.Errorf("collect: %s holds no PodMetricsList", file)
	}
	u.containers = len(ctrs)
	u.vcpu = cpuSum / float64(n)
	return u, nil
}

// parseQuantity reads a Kubernetes resource quantity as metrics-server
// writes them: CPU in n/u/m suffixes or cores, memory in Ki/Mi/Gi or bytes.
func parseQuantity(q string) (float64, error) {
	suffixes := []struct {
		s string
		m float64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"n", 1e-9}, {"u", 1e-6}, {"m", 1e-3}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}}
	mult := 1.0
	num := q
	for _, s := range suffixes {
		if strings.HasSuffix(q, s.s) {
			num, mult = strings.TrimSuffix(q, s.s), s.m
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || num == "" {
		return 0, fmt.Errorf("%q is not a resource quantity", q)
	}
	return v * mult, nil
}
