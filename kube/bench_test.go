package kube

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/proxy"
)

// The Kubernetes issue's scale requirement: the time from an EndpointSlice
// change to the routing change, and the memory kvgate needs, with 1,000 and
// 10,000 endpoints behind one Service (targets at 10,000: p99 ≤ 1 s, ≤ 64
// MiB more RSS). Run it with a bounded count, e.g.
//
//	go test -run '^$' -bench EndpointSliceReaction -benchtime 30x ./kube/
//
// Each iteration flips one endpoint's conditions.ready (not ready, then
// ready again) and measures from just before the API write to the moment
// proxy.SetEndpoints has swapped the pool's list (it is synchronous: once
// it returns, new requests pick from the new list). The time includes the
// API server's write and watch, the controller's Debounce (100 ms by
// default) and its translation of every object.
//
// Memory is this process's (the API server and etcd run in others): the
// heap in use and VmRSS, each after debug.FreeOSMemory, before the
// Gateway, Service, EndpointSlices and controller exist and again once the
// proxy serves them all; the deltas are reported (heap-MiB, rss-MiB), and
// the highest RSS from the controller's start to the end of the flips less
// the first (peak-rss-MiB, from VmHWM: garbage not yet collected counts
// there; start-peak-rss-MiB is the same up to the steady state, before the
// flips). With KVGATE_BENCH_HEAPPROFILE=PREFIX set, heap profiles are
// written at the steady state and after the flips (heapProfile).

var sliceGVR = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}

func BenchmarkEndpointSliceReaction(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) { benchSliceReaction(b, n) })
	}
}

// perSlice is the most endpoints the EndpointSlice controller puts in one
// slice.
const perSlice = 1000

// benchAddr is endpoint i's address, in 10.214.0.0/16: the API server takes
// it, and nothing is ever sent there (no request goes through the proxy).
func benchAddr(i int) string { return fmt.Sprintf("10.214.%d.%d", i/250, i%250+1) }

// benchSlice is EndpointSlice k of Service svc: endpoints k*perSlice up to
// n, all ready.
func benchSlice(svc string, k, n int) *unstructured.Unstructured {
	var eps []any
	for i := k * perSlice; i < min(n, (k+1)*perSlice); i++ {
		eps = append(eps, map[string]any{
			"addresses":  []any{benchAddr(i)},
			"conditions": map[string]any{"ready": true, "serving": true, "terminating": false},
		})
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "discovery.k8s.io/v1",
		"kind":       "EndpointSlice",
		"metadata": map[string]any{
			"name":   fmt.Sprintf("%s-%d", svc, k),
			"labels": map[string]any{"kubernetes.io/service-name": svc},
		},
		"addressType": "IPv4",
		"ports":       []any{map[string]any{"name": "http", "port": int64(8000), "protocol": "TCP"}},
		"endpoints":   eps,
	}}
}

// observed is one endpoint list the controller gave the proxy.
type observed struct {
	at    time.Time
	addrs []string
}

// watchedTarget is the proxy, with every endpoint list it is given (after
// the proxy has taken it) sent on seen.
type watchedTarget struct {
	p       *proxy.Proxy
	seen    chan observed
	reloads atomic.Int64
}

func (w *watchedTarget) SetEndpoints(pool string, addrs []string) error {
	err := w.p.SetEndpoints(pool, addrs)
	at := time.Now()
	if err == nil {
		w.seen <- observed{at, addrs}
	}
	return err
}

func (w *watchedTarget) Reload(cfg *config.Config) error {
	err := w.p.Reload(cfg)
	at := time.Now()
	w.reloads.Add(1)
	if err == nil {
		for _, pl := range cfg.Pools {
			w.seen <- observed{at, pl.Endpoints}
		}
	}
	return err
}

// memory is the heap in use and VmRSS, in bytes, after returning what it
// can to the OS.
func memory(b *testing.B) (heap, rss uint64) {
	b.Helper()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, procStatus(b, "VmRSS")
}

// procStatus is a field of /proc/self/status given in kB, in bytes.
func procStatus(b *testing.B, field string) uint64 {
	b.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("%s: %q: %v", field, v, err)
			}
			return kb * 1024
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// heapProfile writes the heap profile (in use and allocated since the
// process started) to $KVGATE_BENCH_HEAPPROFILE-<endpoints>-<when>.pprof
// when that is set, for `go tool pprof -sample_index=inuse_space`.
func heapProfile(b *testing.B, n int, when string) {
	b.Helper()
	prefix := os.Getenv("KVGATE_BENCH_HEAPPROFILE")
	if prefix == "" {
		return
	}
	runtime.GC() // the profile's in-use figures are as of the last collection
	f, err := os.Create(fmt.Sprintf("%s-%d-%s.pprof", prefix, n, when))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

func mib(after, before uint64) float64 { return (float64(after) - float64(before)) / (1 << 20) }

// percentile is the nearest-rank p-th percentile of sorted durations, in ms.
func percentile(sorted []time.Duration, p float64) float64 {
	i := max(int(math.Ceil(p/100*float64(len(sorted))))-1, 0)
	return float64(sorted[i]) / float64(time.Millisecond)
}

func benchSliceReaction(b *testing.B, n int) {
	ctx := context.Background()
	ns := newNamespace(b)
	class, ctrl := gatewayClass(b)
	slices_ := env.dyn.Resource(sliceGVR).Namespace(ns)
	nSlices := (n + perSlice - 1) / perSlice
	// Registered first, so run last: after the controller and proxy have
	// stopped. A later benchmark's controller watches every namespace, so
	// these objects must not stay for it to cache.
	b.Cleanup(func() {
		for k := range nSlices {
			remove(b, sliceGVR, ns, fmt.Sprintf("s-%d", k))
		}
		remove(b, routeGVR, ns, "r")
		remove(b, schema.GroupVersionResource{Version: "v1", Resource: "services"}, ns, "s")
		remove(b, gwGVR, ns, "gw")
		remove(b, classGVR, "", class)
	})

	heap0, rss0 := memory(b)
	apply(b, ns, gateway(class)+`apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  selector: {app: s}
  ports: [{name: http, port: 80, targetPort: 8000}]
---
`+route("r", "s"))
	for k := range nSlices {
		if _, err := slices_.Create(ctx, benchSlice("s", k, n), createOpts); err != nil {
			b.Fatalf("create EndpointSlice %d: %v", k, err)
		}
	}
	// Resets VmHWM to the RSS now (Linux ≥ 4.0), the benchmark's own
	// garbage from writing the objects freed first, so that the peak below
	// is kvgate's: its start, first translation and the flips.
	memory(b)
	peakOK := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	k := startController(b, ctrl, nil)
	w := &watchedTarget{seen: make(chan observed, 1024)}
	k.wrap = func(p *proxy.Proxy) Target { w.p = p; return w }
	k.serve(b)
	// Steady state: the first configuration holds every object (First
	// waits for every watch's list); let anything still queued settle.
	time.Sleep(time.Second)
	var peakStart uint64
	if peakOK {
		peakStart = procStatus(b, "VmHWM")
	}
	heap1, rss1 := memory(b)
	heapProfile(b, n, "steady")

	lat := make([]time.Duration, 0, b.N)
	var write time.Duration
	b.ResetTimer()
	for i := range b.N {
		e := (i / 2 * 997) % n // spread over the slices
		ready := i%2 == 1      // not ready, then ready again
		addr := benchAddr(e) + ":8000"
		name := fmt.Sprintf("s-%d", e/perSlice)
		b.StopTimer()
		s, err := slices_.Get(ctx, name, getOpts)
		if err != nil {
			b.Fatal(err)
		}
		eps, _, _ := unstructured.NestedSlice(s.Object, "endpoints")
		cond := eps[e%perSlice].(map[string]any)["conditions"].(map[string]any)
		cond["ready"], cond["serving"] = ready, ready
		if err := unstructured.SetNestedSlice(s.Object, eps, "endpoints"); err != nil {
			b.Fatal(err)
		}
		for len(w.seen) > 0 {
			<-w.seen
		}
		b.StartTimer()

		t0 := time.Now()
		if _, err := slices_.Update(ctx, s, updateOpts); err != nil {
			b.Fatalf("update EndpointSlice %s: %v", name, err)
		}
		write += time.Since(t0)
		want := n
		if !ready {
			want = n - 1
		}
		timeout := time.After(10 * time.Second)
	wait:
		for {
			select {
			case o := <-w.seen:
				if slices.Contains(o.addrs, addr) == ready {
					if len(o.addrs) != want {
						b.Fatalf("the pool has %d endpoints; want %d", len(o.addrs), want)
					}
					lat = append(lat, o.at.Sub(t0))
					break wait
				}
			case <-timeout:
				b.Fatalf("endpoint %s ready=%v: not in the proxy's pool within 10 s", addr, ready)
			}
		}
	}
	b.StopTimer()
	heapProfile(b, n, "flips")
	if peakOK {
		b.ReportMetric(mib(peakStart, rss0), "start-peak-rss-MiB")
		b.ReportMetric(mib(procStatus(b, "VmHWM"), rss0), "peak-rss-MiB")
	}

	slices.Sort(lat)
	b.ReportMetric(0, "ns/op") // the iteration is the latency below, not a rate
	b.ReportMetric(percentile(lat, 50), "p50-ms")
	b.ReportMetric(percentile(lat, 99), "p99-ms")
	b.ReportMetric(percentile(lat, 100), "max-ms")
	b.ReportMetric(float64(write)/float64(b.N)/float64(time.Millisecond), "api-write-ms")
	b.ReportMetric(mib(heap1, heap0), "heap-MiB")
	b.ReportMetric(mib(rss1, rss0), "rss-MiB")
	b.ReportMetric(float64(w.reloads.Load()), "reloads")
}
