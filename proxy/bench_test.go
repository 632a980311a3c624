package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/kvgate/kvgate/config"
)

// benchProxy starts a fasthttp echo backend and kvgate in front of it with
// the given routes (%s is the pool address), and returns the proxy address.
func benchProxy(b *testing.B, routes string, setup ...func(*Proxy)) string {
	b.Helper()
	backend := benchEchoBackend(b)
	yaml := fmt.Sprintf(`admin: {address: "off"}
accessLog: {path: "off"}
listeners:
  - {name: plain, address: "127.0.0.1:0", protocols: [http1]}
%s
pools:
  - {name: b, endpoints: [%q]}
`, routes, backend)
	cfg, err := config.Parse([]byte(yaml), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	p, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range setup {
		f(p)
	}
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	return p.Listener("plain").Addr().String()
}

// benchEchoBackend starts a fasthttp backend that answers every request
// with its body, stopped when b ends, and returns its address.
func benchEchoBackend(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBody(ctx.PostBody()) }}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

func benchPost(b *testing.B, addr, path string) {
	c := &fasthttp.HostClient{Addr: addr, MaxConns: 64, Dial: func(a string) (net.Conn, error) { return net.Dial("tcp", a) }}
	defer c.CloseIdleConnections()
	body := bytes.Repeat([]byte("k"), 1024)
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + addr + path)
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json")
	req.SetBody(body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Do(req, resp); err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode() != 200 || len(resp.Body()) != len(body) {
			b.Fatalf("status %d, %d bytes", resp.StatusCode(), len(resp.Body()))
		}
	}
}

// BenchmarkProxyH1 is one HTTP/1.1 POST of 1 KiB through kvgate to a
// loopback fasthttp backend and back, one route.
func BenchmarkProxyH1(b *testing.B) {
	addr := benchProxy(b, "routes:\n  - {name: r, backends: [{pool: b}]}")
	benchPost(b, addr, "/v1/chat/completions")
}

// BenchmarkProxyH1AccessLog is BenchmarkProxyH1 with the JSON access log
// written to a file: what one logged request costs end to end.
func BenchmarkProxyH1AccessLog(b *testing.B) {
	addr := benchProxy(b, "routes:\n  - {name: r, backends: [{pool: b}]}", func(p *Proxy) {
		acc, err := openAccessLog(filepath.Join(b.TempDir(), "access.log"))
		if err != nil {
			b.Fatal(err)
		}
		p.access = acc // closed by Shutdown
	})
	benchPost(b, addr, "/v1/chat/completions")
}

// BenchmarkProxyH1PathRewrite is BenchmarkProxyH1 with a path that must be
// normalised (pathnorm.go): the rewrite lands in the pooled Exchange's buffer.
func BenchmarkProxyH1PathRewrite(b *testing.B) {
	addr := benchProxy(b, "routes:\n  - {name: r, backends: [{pool: b}]}")
	benchPost(b, addr, "//v1/./chat/%63ompletions")
}

// BenchmarkProxyH1Rules20 is the same request with 20 routes in the table
// (header, method and prefix rules); the request matches the last one by
// precedence, so matching walks past the others.
func BenchmarkProxyH1Rules20(b *testing.B) {
	var rs strings.Builder
	rs.WriteString("routes:\n")
	for i := range 19 {
		fmt.Fprintf(&rs, "  - {name: r%d, matches: [{path: {value: /v1/chat/}, headers: [{name: x-tenant, value: t%d}]}, {path: {value: /api/%d}, method: GET}], backends: [{pool: b}]}\n", i, i, i)
	}
	rs.WriteString("  - {name: last, matches: [{path: {value: /v1/}}], backends: [{pool: b}]}")
	addr := benchProxy(b, rs.String())
	benchPost(b, addr, "/v1/chat/completions")
}

// BenchmarkProxyH2cToH1 is the 1 KiB POST from an h2c client (net/http) to
// the HTTP/1.1 backend: the path where the client's context can end, so
// kvgate watches it while the upstream works (h1Cancel).
func BenchmarkProxyH2cToH1(b *testing.B) {
	backend := benchEchoBackend(b)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`admin: {address: "off"}
accessLog: {path: "off"}
listeners:
  - {name: plain, address: "127.0.0.1:0", protocols: [http1, http2]}
routes:
  - {name: r, backends: [{pool: b}]}
pools:
  - {name: b, endpoints: [%q]}
`, backend)), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	p := startConfig(b, cfg, nil)
	e := engines()[1]
	c, url := e.client(), e.url(p, "/v1/chat/completions")
	body := bytes.Repeat([]byte("k"), 1024)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n != int64(len(body)) {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
	}
}
