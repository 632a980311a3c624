package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kvgate/kvgate/internal/progress"
	"github.com/kvgate/kvgate/internal/syncbuf"
)

// TestDemoSmoke runs the demo on a very small built-in workload.
func TestDemoSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, bar bytes.Buffer
	err := runDemo(ctx, []string{"--synthetic", "--conversations", "3", "--turns", "2", "--simulators", "2", "--duration", "300ms", "--admin", "off"}, &out, &bar)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{"built-in conversations", "round-robin", "prefix-affinity", "latency (default)", "prefix hit rate", "TTFT p99", "0/6"} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
	if bar.Len() != 0 {
		t.Errorf("progress drawn on something that is not a terminal: %q", bar.String())
	}
}

// TestDemoProgressOnTerminal: on a terminal the demo draws a bar per run.
func TestDemoProgressOnTerminal(t *testing.T) {
	old := progress.IsTerminal
	progress.IsTerminal = func(io.Writer) bool { return true }
	defer func() { progress.IsTerminal = old }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, bar bytes.Buffer
	err := runDemo(ctx, []string{"--synthetic", "--conversations", "2", "--turns", "1", "--simulators", "2", "--duration", "200ms", "--admin", "off"}, &out, &bar)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if got := strings.Count(bar.String(), "] 2/2"); got != 3 {
		t.Errorf("want one finished bar per run (3), got %d: %q", got, bar.String())
	}
}

func TestDemoFlags(t *testing.T) {
	for _, args := range [][]string{{"--turns", "0"}, {"--duration", "-1s"}, {"--bogus"}} {
		if err := runDemo(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); exitCode(err) != 2 {
			t.Errorf("runDemo(%v) = %v, want a usage error (exit 2)", args, err)
		}
	}
}

// TestDemoStatusPage is the "done when": run the demo, open the
// admin address, see which endpoint each conversation went to and why.
// With --keep the demo prints its table, then holds kvgate up with the
// status page until interrupted.
func TestDemoStatusPage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, []string{"--synthetic", "--conversations", "3", "--turns", "2", "--simulators", "2", "--duration", "300ms", "--admin", "127.0.0.1:0", "--keep"}, &out, io.Discard)
	}()
	re := regexp.MustCompile(`stay up \(status page (http://127\.0\.0\.1:\d+/)\)`)
	var url string
	for url == "" {
		select {
		case err := <-done:
			t.Fatalf("demo ended before holding: %v\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if m := re.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		}
	}
	if !strings.Contains(out.String(), "prefix hit rate") {
		t.Errorf("the table was not printed before holding:\n%s", out.String())
	}
	resp, err := http.Get(url + "debug/picks")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Picks []struct{ Endpoint, Reason, Pool string }
	}
	err = json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if err != nil || len(v.Picks) != 6 {
		t.Fatalf("/debug/picks: %v, %d picks, want the prefix-affinity run's 6", err, len(v.Picks))
	}
	for _, p := range v.Picks {
		if p.Endpoint == "" || p.Reason == "fallback" || p.Pool != "sims" {
			t.Errorf("pick %+v: want an endpoint of pool sims chosen by prefix (not fallback)", p)
		}
	}
	page, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	page.Body.Close()
	if page.StatusCode != 200 {
		t.Errorf("status page: %d", page.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("demo after interrupt: %v", err)
	}
	if n := strings.Count(out.String(), "prefix hit rate"); n != 1 {
		t.Errorf("table printed %d times, want once", n)
	}
}
