package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
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
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"http1", nil},
		// 20 streams, 7 per connection: three h2c connections, the last one partly used.
		{"h2c", []string{"-h2", "-m", "7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ready := filepath.Join(t.TempDir(), "ready")
			var out bytes.Buffer
			args := append([]string{"-mode", "sse-hold", "-url", "http://" + addr + "/events", "-n", "20", "-hold", "10ms", "-ready", ready}, tc.flags...)
			if err := run(ctx, args, &out); err != nil {
				t.Fatal(err)
			}
			var rep HoldReport
			b, _ := os.ReadFile(ready)
			if err := json.Unmarshal(b, &rep); err != nil || rep.Open != 20 || rep.Errors != 0 {
				t.Fatalf("ready file %s (%v), want 20 open streams", b, err)
			}
		})
	}
}

func TestReadResponse(t *testing.T) {
	for _, tt := range []struct {
		name, in       string
		status         int
		closed, hasErr bool
		rest           string
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcNEXT", 200, false, false, "NEXT"},
		{"chunked with trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\nNEXT", 200, false, false, "NEXT"},
		{"close", "HTTP/1.1 503 No\r\nconnection: Close\r\ncontent-length: 0\r\n\r\n", 503, true, false, ""},
		{"to eof", "HTTP/1.0 200 OK\r\n\r\nbody", 200, true, false, ""},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\nNEXT", 204, false, false, "NEXT"},
		{"bad status", "HTP/1.1 200 OK\r\n\r\n", 0, true, true, ""},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 200, true, true, ""},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 200, true, true, ""},
	} {
		br := bufio.NewReader(strings.NewReader(tt.in))
		status, closed, err := readResponse(br)
		if status != tt.status || closed != tt.closed || (err != nil) != tt.hasErr {
			t.Errorf("%s: status %d closed %v err %v, want %d %v error=%v", tt.name, status, closed, err, tt.status, tt.closed, tt.hasErr)
			continue
		}
		if rest, _ := io.ReadAll(br); !tt.hasErr && string(rest) != tt.rest {
			t.Errorf("%s: left %q unread, want %q", tt.name, rest, tt.rest)
		}
	}
}
