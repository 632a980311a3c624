package proxy

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/pick"
)

// BenchmarkProxyH1Inference is BenchmarkProxyH1 through an inference pool
// (prefix-affinity) with a 1 KiB chat completions body: the prompt read,
// the block hashing, the pick and, since the status page, the pick's entry
// in the decision log (status.go).
func BenchmarkProxyH1Inference(b *testing.B) {
	backend := benchEchoBackend(b)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`admin: {address: "off"}
accessLog: {path: "off"}
listeners: [{name: plain, address: "127.0.0.1:0", protocols: [http1]}]
routes: [{name: r, backends: [{pool: b}]}]
pools: [{name: b, endpoints: [%q], inference: {picker: prefix-affinity, scrapeInterval: 1h}}]
`, backend)), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	p := startConfig(b, cfg, nil)
	addr := p.Listener("plain").Addr().String()
	c := &fasthttp.HostClient{Addr: addr, MaxConns: 64, Dial: func(a string) (net.Conn, error) { return net.Dial("tcp", a) }}
	defer c.CloseIdleConnections()
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("k", 1024-58) + `"}]}`)
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + addr + "/v1/chat/completions")
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json")
	req.SetBody(body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Do(req, resp); err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), body) {
			b.Fatalf("status %d, %d bytes", resp.StatusCode(), len(resp.Body()))
		}
	}
}

// BenchmarkStatusObserve is what Exchange.finish adds per request for the
// status page: a few atomic adds and one lookup of the route's counters.
func BenchmarkStatusObserve(b *testing.B) {
	cfg, err := config.Parse([]byte(`listeners: [{name: l, address: "127.0.0.1:0"}]
routes: [{name: r, backends: [{pool: a, weight: 9}, {pool: c, weight: 1}]}]
pools: [{name: a, endpoints: ["127.0.0.1:1"]}, {name: c, endpoints: ["127.0.0.1:2"]}]
`), "b.yaml")
	if err != nil {
		b.Fatal(err)
	}
	var st statusState
	st.syncRoutes(cfg)
	x := &Exchange{route: "r", pool: "a", ttft: 1234, status: 200}
	x.tokens.Prompt, x.tokens.Cached = 1000, 800
	b.ReportAllocs()
	for b.Loop() {
		st.observe(x, 200)
	}
}

// BenchmarkPickRingRecord is what an inference pick adds for the decision
// log: copying its 8 scored candidates into a ring slot.
func BenchmarkPickRingRecord(b *testing.B) {
	p, err := pick.NewPool(pick.Options{Preset: "prefix-affinity", Balancer: "least-request", CacheBlocks: 1024, BlockSize: 64, LoadBound: 1.25, QueueThreshold: 5})
	if err != nil {
		b.Fatal(err)
	}
	var eps []*pick.Endpoint
	for i := range 8 {
		eps = append(eps, p.Endpoint(fmt.Sprintf("10.0.0.%d:8000", i)))
	}
	pc := pick.AcquirePickContext()
	defer pick.ReleasePickContext(pc)
	pc.Keep = true
	pc.Req.HasPrompt, pc.Req.Model = true, "llama"
	d := p.Explain(pc, eps)
	x := &Exchange{route: "r", requestID: "0123456789abcdef0123456789abcdef"}
	var r pickRing
	b.ReportAllocs()
	for b.Loop() {
		r.record(x, "pool", pc, &d, eps)
	}
}
