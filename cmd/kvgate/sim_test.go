package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestConsecutive(t *testing.T) {
	for _, tc := range []struct {
		addr  string
		count int
		want  []string
		err   string
	}{
		{"127.0.0.1:8000", 3, []string{"127.0.0.1:8000", "127.0.0.1:8001", "127.0.0.1:8002"}, ""},
		{"127.0.0.1:0", 2, []string{"127.0.0.1:0", "127.0.0.1:0"}, ""},
		{"[::1]:9000", 1, []string{"[::1]:9000"}, ""},
		{"127.0.0.1", 1, nil, "write host:port"},
		{"127.0.0.1:65535", 2, nil, "leave room"},
		{"127.0.0.1:x", 1, nil, "port must be"},
	} {
		got, err := consecutive(tc.addr, tc.count)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("consecutive(%q, %d): err %v, want %q", tc.addr, tc.count, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("consecutive(%q, %d) = %v, %v; want %v", tc.addr, tc.count, got, err, tc.want)
		}
	}
}

// TestSimCommand starts two simulators, reads their addresses from the JSON
// log, asks each for its models, and stops them by cancelling the context.
func TestSimCommand(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runSim(ctx, []string{"--addr", "127.0.0.1:0", "--count", "2", "--model", "m1", "--time-scale", "0.01"}, io.Discard, pw)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	var addrs []string
	for len(addrs) < 2 && lines.Scan() {
		var rec struct{ Msg, Address, Model string }
		if err := json.Unmarshal(lines.Bytes(), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", lines.Text())
		}
		if rec.Msg == "simulator listening" && rec.Model == "m1" {
			addrs = append(addrs, rec.Address)
		}
	}
	if len(addrs) != 2 || addrs[0] == addrs[1] {
		t.Fatalf("simulator addresses %v", addrs)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	for _, a := range addrs {
		resp, err := hc.Get("http://" + a + "/v1/models")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"m1"`) {
			t.Fatalf("%s: %d %s", a, resp.StatusCode, body)
		}
	}
	hc.CloseIdleConnections()
	cancel()
	go io.Copy(io.Discard, pr) // drain the stop lines
	if err := <-done; err != nil {
		t.Fatalf("runSim: %v", err)
	}
}

func TestSimCommandFlags(t *testing.T) {
	for _, args := range [][]string{{"--count", "0"}, {"--num-gpu-blocks", "-1"}, {"--addr", "nowhere"}, {"--nope"},
		{"--kv-replay-offset", "2"}, {"--kv-events-offset", "1", "--kv-replay-offset", "1"},
		{"--addr", "127.0.0.1:0", "--kv-events-offset", "1000"}, {"--addr", "127.0.0.1:65000", "--kv-events-offset", "1000"}} {
		if err := runSim(context.Background(), args, io.Discard, io.Discard); exitCode(err) != 2 {
			t.Errorf("runSim(%v) = %v, want a usage error (exit 2)", args, err)
		}
	}
}
