package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvgate/kvgate/internal/syncbuf"
)

// logLines collects the JSON log of an in-process `kvgate run`.
type logLines struct{ syncbuf.Buffer }

// find returns the first complete log record with msg (and, when attr is
// not "", attribute attr equal to val).
func (l *logLines) find(msg, attr, val string) map[string]any {
	for line := range strings.Lines(l.String()) {
		if !strings.HasSuffix(line, "\n") {
			break
		}
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != msg {
			continue
		}
		if attr == "" || rec[attr] == val {
			return rec
		}
	}
	return nil
}

// waitFor polls until cond holds, for at most d.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// gatewayManifest is a Gateway and an HTTPRoute sending prefix to the
// Services svc-a and svc-b with the given weights.
func gatewayManifest(prefix string, weightA, weightB int) string {
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: kvgate
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
    - matches: [{path: {type: PathPrefix, value: %s}}]
      backendRefs: [{name: svc-a, port: 80, weight: %d}, {name: svc-b, port: 80, weight: %d}]
`, prefix, weightA, weightB)
}

// TestRunReloadsManifest starts `kvgate run` on Kubernetes manifests, then
// changes the HTTPRoute in the file and reloads it, by POST /reload and by
// the file watch: the new routing serves real traffic. A broken manifest is
// refused with its file, line and fix, and the running routing stays.
func TestRunReloadsManifest(t *testing.T) {
	backend := func(name string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Backend", name)
		}))
		t.Cleanup(s.Close)
		return strings.TrimPrefix(s.URL, "http://")
	}
	a, b := backend("a"), backend("b")
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(gatewayManifest("/v1/", 1, 0))

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var logs logLines
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"run", path,
			"--endpoints", "svc-a-80=" + a, "--endpoints", "svc-b-80=" + b,
			"--listen", "gw-http=127.0.0.1:0", "--admin", "127.0.0.1:0"}, io.Discard, &logs)
	}()
	stopped := false
	defer func() {
		cancel()
		if !stopped {
			<-done
		}
	}()
	if !waitFor(10*time.Second, func() bool { return logs.find("kvgate started", "", "") != nil }) {
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("run ended: %v\n%s", err, logs.String())
		default:
			t.Fatalf("kvgate did not start in 10s:\n%s", logs.String())
		}
	}
	proxyURL := "http://" + logs.find("listening", "listener", "gw-http")["address"].(string)
	adminURL := "http://" + logs.find("admin listening", "", "")["address"].(string)

	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	get := func(p string) string { // "status backend"
		t.Helper()
		resp, err := hc.Get(proxyURL + p)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("X-Backend"))
	}
	reload := func() (int, string) {
		t.Helper()
		resp, err := hc.Post(adminURL+"/reload", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body)
	}
	expect := func(when string, want map[string]string) {
		t.Helper()
		for p, w := range want {
			if got := get(p); got != w {
				t.Errorf("%s: GET %s = %q, want %q", when, p, got, w)
			}
		}
	}

	expect("at start", map[string]string{"/v1/x": "200 a", "/v2/x": "404 "})

	write(gatewayManifest("/v2/", 0, 1))
	if code, body := reload(); code != 200 {
		t.Fatalf("POST /reload of a changed manifest: %d %s\n%s", code, body, logs.String())
	}
	expect("after POST /reload", map[string]string{"/v1/x": "404 ", "/v2/x": "200 b"})

	write(gatewayManifest("/v3/", 1, 0))
	if !waitFor(10*time.Second, func() bool { return get("/v3/x") == "200 a" }) {
		t.Fatalf("the file watch did not reload the changed manifest in 10s:\n%s", logs.String())
	}
	expect("after the file watch", map[string]string{"/v2/x": "404 ", "/v3/x": "200 a"})

	write(strings.Replace(gatewayManifest("/v3/", 1, 0), "value: /v3/", "value: v4/", 1))
	code, body := reload()
	if code != 422 {
		t.Errorf("POST /reload of a broken manifest: %d %s, want 422", code, body)
	}
	for _, w := range []string{"gateway.yaml:8:", "HTTPRoute default/r", `must start with "/"`} {
		if !strings.Contains(body, w) {
			t.Errorf("the refusal lacks %q: %s", w, body)
		}
	}
	expect("after a refused reload", map[string]string{"/v3/x": "200 a", "/v4/x": "404 "})

	cancel()
	stopped = true
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}
