package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMDrainTimeout: SIGTERM with a stream still open past
// drainTimeout makes kvgate cut the stream, client and upstream side, and
// exit with code 0 shortly after the deadline (README: "SIGTERM/SIGINT").
// It runs main's own path (mainCode) in this process and signals it.
func TestSIGTERMDrainTimeout(t *testing.T) {
	const drain, bound = 300 * time.Millisecond, 3 * time.Second
	upstreamEnded := make(chan struct{})
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select { // silent until the proxy lets go of the request
		case <-r.Context().Done():
			close(upstreamEnded)
		case <-time.After(10 * time.Second):
		}
	})}
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = up.Serve(upLn) }()
	t.Cleanup(func() { _ = up.Close() })

	addr := freeAddr(t)
	path := filepath.Join(t.TempDir(), "kvgate.yaml")
	yaml := fmt.Sprintf(`admin: {address: "off"}
accessLog: {path: "off"}
drainTimeout: %s
listeners:
  - {name: plain, address: %q}
routes:
  - {name: r, backends: [{pool: b}]}
pools:
  - {name: b, endpoints: [%q]}
`, drain, addr, upLn.Addr().String())
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	exited := make(chan int, 1)
	go func() { exited <- mainCode([]string{"run", "--config", path, "--log-level", "error"}, io.Discard) }()

	// The stream goes through once kvgate listens (and so has its signal
	// handler: mainCode installs it before run starts).
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var resp *http.Response
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err = c.Get("http://" + addr + "/v1/stream"); err == nil {
			break
		}
		select {
		case code := <-exited:
			t.Fatalf("kvgate exited with %d before serving", code)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("kvgate does not answer on %s: %v", addr, err)
		}
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); line != "data: one\n" {
		t.Fatalf("first line %q, err %v", line, err)
	}
	rest := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, br); resp.Body.Close(); rest <- err }()

	start := time.Now()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit code %d after SIGTERM; README promises 0", code)
		}
		if took := time.Since(start); took < drain {
			t.Errorf("exited %v after SIGTERM, before drainTimeout (%v) with a stream open", took, drain)
		}
	case <-time.After(drain + bound):
		t.Fatalf("kvgate still running %v after SIGTERM with drainTimeout %v", drain+bound, drain)
	}
	select {
	case err := <-rest:
		if err == nil {
			t.Error("client stream ended cleanly; want it cut at the drain deadline")
		}
	case <-time.After(bound):
		t.Fatal("client stream still open after kvgate exited")
	}
	select {
	case <-upstreamEnded:
	case <-time.After(bound):
		t.Fatal("upstream request still running after kvgate exited")
	}
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
