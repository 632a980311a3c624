package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseRejects(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-url", "ftp://x"},
		{"-url", "http://127.0.0.1:1", "-rate", "0"},
		{"-url", "http://127.0.0.1:1", "extra"},
		{"-mode", "nope"},
	} {
		if _, err := parse(args); err == nil {
			t.Errorf("parse(%q) accepted", args)
		}
	}
}

func TestLoadH1AndH2(t *testing.T) {
	var n int
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		w.Write(bytes.Repeat([]byte("k"), 1024))
	})
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	for _, h2 := range []bool{false, true} {
		args := []string{"-url", srv.URL + "/1k.bin", "-rate", "200", "-d", "250ms", "-c", "2"}
		if h2 {
			args = append(args, "-h2")
		}
		var out bytes.Buffer
		if err := run(context.Background(), args, &out); err != nil {
			t.Fatalf("h2=%v: %v", h2, err)
		}
		var rep Report
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.OK != 50 || rep.Errors != 0 || rep.P99ms <= 0 {
			t.Errorf("h2=%v: report %+v, want 50 good requests and a p99", h2, rep)
		}
	}
}

func TestLoadCountsErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer srv.Close()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-url", srv.URL, "-rate", "100", "-d", "100ms", "-c", "1"}, &out); err != nil {
		t.Fatal(err)
	}
	var rep Report
	_ = json.Unmarshal(out.Bytes(), &rep)
	if rep.OK != 0 || rep.Errors != 10 || !strings.Contains(rep.FirstError, "503") {
		t.Errorf("report %+v, want 10 errors naming status 503", rep)
	}
}

func TestSSEHoldThroughBackend(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw, _ := os.Pipe()
	go func() { _ = sseBackend(ctx, config{listen: "127.0.0.1:0"}, pw) }()
	line := make([]byte, 64)
	k, _ := pr.Read(line)
	addr := strings.TrimSpace(strings.TrimPrefix(string(line[:k]), "listening "))
	if _, _, err := net.SplitHostPort(addr); err != nil {
		t.Fatalf("backend said %q", line[:k])
	}
	ready := filepath.Join(t.TempDir(), "ready")
	var out bytes.Buffer
	err := run(ctx, []string{"-mode", "sse-hold", "-url", "http://" + addr + "/events", "-n", "20", "-hold", "10ms", "-ready", ready}, &out)
	if err != nil {
		t.Fatal(err)
	}
	var rep HoldReport
	b, _ := os.ReadFile(ready)
	if err := json.Unmarshal(b, &rep); err != nil || rep.Open != 20 || rep.Errors != 0 {
		t.Fatalf("ready file %s (%v), want 20 open streams", b, err)
	}
}
