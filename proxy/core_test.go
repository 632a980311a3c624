package proxy

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvgate/kvgate/pick"
)

func TestHeaderBytesTooLarge(t *testing.T) {
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	p := startProxy(t, simple(addr, "limits: {maxHeaderBytes: 4096}"))
	eachEngine(t, func(t *testing.T, e engine) {
		req, _ := http.NewRequest("GET", e.url(p, "/"), nil)
		req.Header.Set("X-Big", strings.Repeat("a", 8192))
		resp, err := e.client().Do(req)
		if err != nil {
			if e.proto == 2 {
				return // the HTTP/2 client refuses to send past the advertised SETTINGS_MAX_HEADER_LIST_SIZE
			}
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 431 {
			t.Fatalf("status %d, want 431", resp.StatusCode)
		}
	})
}

func TestDNSPool(t *testing.T) {
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("dns")) }))
	_, port, _ := net.SplitHostPort(addr)
	p := startProxy(t, fmt.Sprintf(`routes:
  - {name: r, backends: [{pool: b}]}
pools:
  - {name: b, dns: "localhost:%s", resolveInterval: 100ms}`, port))
	<-p.snap.Load().pools["b"].resolved
	c := engines()[0].client()
	resp, body := mustGet(t, c, engines()[0].url(p, "/"))
	if resp.StatusCode != 200 || body != "dns" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
}

func TestBalancers(t *testing.T) {
	seen := map[string]int{}
	var addrs []string
	for i := range 3 {
		name := fmt.Sprint("b", i)
		addrs = append(addrs, backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(name)) })))
	}
	for _, bal := range []string{"round-robin", "least-request"} {
		t.Run(bal, func(t *testing.T) {
			clear(seen)
			p := startProxy(t, fmt.Sprintf(`routes:
  - {name: r, backends: [{pool: b}]}
pools:
  - {name: b, balancer: %s, endpoints: [%q, %q, %q]}`, bal, addrs[0], addrs[1], addrs[2]))
			c := engines()[0].client()
			for range 300 {
				_, body := mustGet(t, c, engines()[0].url(p, "/"))
				seen[body]++
			}
			for i := range 3 {
				n := seen[fmt.Sprint("b", i)]
				if bal == "round-robin" && n != 100 || n < 50 {
					t.Fatalf("spread %v", seen)
				}
			}
		})
	}
}

func TestEjectionAfterConnectFailures(t *testing.T) {
	good := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	p := startProxy(t, fmt.Sprintf(`routes:
  - {name: r, backends: [{pool: b}]}
pools:
  - {name: b, balancer: round-robin, endpoints: ["127.0.0.1:1", %q]}`, good))
	c := engines()[0].client()
	fails := 0
	for range 40 {
		resp, _ := mustGet(t, c, engines()[0].url(p, "/"))
		if resp.StatusCode == 502 {
			fails++
		}
	}
	if fails != pick.EjectAfterFails {
		t.Fatalf("%d requests failed; the dead endpoint should be ejected after %d", fails, pick.EjectAfterFails)
	}
}

func TestConnectionCap(t *testing.T) {
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	p := startProxy(t, simple(addr, "limits: {maxConnections: 2}"))
	la := p.Listener("plain").Addr().String()
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", la)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// Both slots are taken (one per listener is not needed: the cap is global).
	deadline := time.Now().Add(2 * time.Second)
	for len(p.connSem) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	third, err := net.Dial("tcp", la)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	fmt.Fprint(third, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	third.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := third.Read(make([]byte, 1)); err == nil {
		t.Fatal("a third connection was served over maxConnections: 2")
	}
	held[0].Close()
	third.SetReadDeadline(time.Now().Add(5 * time.Second))
	status, err := bufio.NewReader(third).ReadString('\n')
	if err != nil || !strings.Contains(status, "200") {
		t.Fatalf("after a slot freed: %q %v", status, err)
	}
	held[1].Close()
}

func TestAccessLogAndMetrics(t *testing.T) {
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) }))
	logPath := filepath.Join(t.TempDir(), "access.log")
	p := startProxy(t, simple(addr))
	// startProxy turns the access log off; open one on the running proxy.
	acc, err := openAccessLog(logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.access = acc
	e := engines()[0]
	resp, _ := mustGet(t, e.client(), e.url(p, "/hello?x=1"))
	id := resp.Header.Get("X-Request-Id")
	acc.close()
	p.access = nil
	raw, _ := os.ReadFile(logPath)
	var line map[string]any
	if err := json.Unmarshal(raw, &line); err != nil {
		t.Fatalf("access log line is not JSON: %q", raw)
	}
	want := map[string]any{"request_id": id, "listener": "plain", "method": "GET", "path": "/hello",
		"status": float64(200), "route": "r", "pool": "b", "endpoint": addr, "bytes": float64(5)}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("access log %s = %v, want %v", k, line[k], v)
		}
	}
	mr, err := http.Get("http://" + p.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mr.Body)
	mr.Body.Close()
	for _, s := range []string{
		fmt.Sprintf(`kvgate_requests_total{class="2xx",code="200",endpoint=%q,listener="plain",model="",pool="b",route="r"} 1`, addr),
		fmt.Sprintf(`kvgate_request_duration_seconds_count{class="2xx",code="200",endpoint=%q,listener="plain"`, addr),
		fmt.Sprintf(`kvgate_endpoint_inflight_requests{endpoint=%q,pool="b"} 0`, addr),
		`kvgate_config_reloads_total{result="ok"} 1`,
	} {
		if !strings.Contains(string(body), s) {
			t.Errorf("/metrics lacks %s", s)
		}
	}
}

// A connection that never sends a request is closed without a response:
// fasthttp alone would write an unsolicited 400 on it after the header timeout.
func TestSilentConnectionClosedQuietly(t *testing.T) {
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	p := startProxy(t, simple(addr, "limits: {readHeaderTimeout: 200ms}"))
	for _, e := range engines() {
		if e.proto != 1 {
			continue
		}
		t.Run(e.name, func(t *testing.T) {
			var c net.Conn
			var err error
			if e.listener == "tls" {
				c, err = tls.Dial("tcp", p.Listener("tls").Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			} else {
				c, err = net.Dial("tcp", p.Listener("plain").Addr().String())
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			b, err := io.ReadAll(c)
			if len(b) != 0 {
				t.Fatalf("idle connection got %q", b)
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("idle connection was not closed after readHeaderTimeout")
			}
		})
	}
}

// A keep-alive connection that goes idle after a request is closed quietly
// when idleTimeout passes.
func TestIdleKeepAliveClosedQuietly(t *testing.T) {
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	p := startProxy(t, simple(addr, "limits: {readHeaderTimeout: 200ms, idleTimeout: 300ms}"))
	c, err := net.Dial("tcp", p.Listener("plain").Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, err := io.ReadAll(br)
	if len(rest) != 0 {
		t.Fatalf("idle keep-alive connection got %q", rest)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("idle keep-alive connection was not closed after idleTimeout")
	}
}
