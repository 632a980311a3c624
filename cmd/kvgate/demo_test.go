package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestDemoSmoke runs the demo on a very small built-in workload.
func TestDemoSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, bar bytes.Buffer
	err := runDemo(ctx, []string{"--synthetic", "--conversations", "3", "--turns", "2", "--simulators", "2", "--duration", "300ms"}, &out, &bar)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{"built-in conversations", "round-robin", "prefix-affinity", "prefix hit rate", "TTFT p99", "0/6"} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
	if !strings.Contains(bar.String(), "] 6/6") {
		t.Errorf("progress bar never reached 6/6: %q", bar.String())
	}
}

func TestDemoFlags(t *testing.T) {
	for _, args := range [][]string{{"--turns", "0"}, {"--duration", "-1s"}, {"--bogus"}} {
		if err := runDemo(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); exitCode(err) != 2 {
			t.Errorf("runDemo(%v) = %v, want a usage error (exit 2)", args, err)
		}
	}
}
