package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kvgate/kvgate/internal/progress"
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
	for _, want := range []string{"built-in conversations", "round-robin", "prefix-affinity", "prefix hit rate", "TTFT p99", "0/6"} {
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
	if got := strings.Count(bar.String(), "] 2/2"); got != 2 {
		t.Errorf("want one finished bar per run (2), got %d: %q", got, bar.String())
	}
}

func TestDemoFlags(t *testing.T) {
	for _, args := range [][]string{{"--turns", "0"}, {"--duration", "-1s"}, {"--bogus"}} {
		if err := runDemo(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); exitCode(err) != 2 {
			t.Errorf("runDemo(%v) = %v, want a usage error (exit 2)", args, err)
		}
	}
}
