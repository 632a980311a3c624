package proxy

import (
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/kvgate/kvgate/config"
)

// BenchmarkH1Path measures one proxied HTTP/1.1 request end to end over
// loopback: fasthttp client → kvgate → fasthttp backend answering 1 KiB.
// allocs/op counts the whole process (client and backend included); the
// proxy's own share is what `-memprofile` attributes to package proxy.
// The aim is zero in kvgate; fasthttp's streaming client makes 4 of its own.
func BenchmarkH1Path(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) }}
	go srv.Serve(ln)
	defer srv.Shutdown()
	cfg, err := config.Parse([]byte(`
admin: {address: "off"}
accessLog: {path: "off"}
listeners: [{name: l, address: "127.0.0.1:0", protocols: [http1]}]
routes: [{name: r, backends: [{pool: p}]}]
pools: [{name: p, endpoints: ["`+ln.Addr().String()+`"]}]
`), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	p, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	defer p.Shutdown(b.Context())
	c := &fasthttp.HostClient{Addr: p.Listener("l").Addr().String()}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI("http://bench/v1/models")
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatal(err, resp.StatusCode())
		}
	}
}
