package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/kvgate/kvgate/admin/admintest"
)

// TestInspectEndToEnd runs every inspect subcommand against a running
// kvgate with simulators, in table and JSON form.
func TestInspectEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := admintest.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Traffic(3, 2, 4); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(s.Admin, "http://")
	inspect := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(ctx, append([]string{"inspect"}, args...), &out, &bytes.Buffer{}); err != nil {
			t.Fatalf("inspect %v: %v", args, err)
		}
		return out.String()
	}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"pools", "--admin", addr}, []string{"POOL", "KIND", "chat ", "inference", "prefix-affinity", "tools", "plain", "round-robin"}},
		{[]string{"--admin", s.Admin, "endpoints"}, []string{"ENDPOINT", "STATE", "TTFT-P50", s.Dead, "ready"}},
		{[]string{"routes", "--admin", addr}, []string{"ROUTE", "chat", "chat 90 90%", "chat-canary 10 10%", "header x-pool=tools"}},
		{[]string{"picks", "-n", "2", "--admin", addr}, []string{"REASON", "sim-model", "chat", "*127.0.0.1:"}},
		{[]string{"explain", "--admin", addr, "--model", "sim-model", "--prompt", "hello there"}, []string{"route chat (listener public)", "backend chat: weight 90", "-> 127.0.0.1:", "SCORE", "backend chat-canary"}},
		{[]string{"explain", "--admin", addr, "--model", "m", "--prompt", "p", "--header", "x-pool=tools"}, []string{"route tools", "plain pool", "ejected"[0:0]}},
	}
	for _, tc := range tests {
		out := inspect(tc.args...)
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("inspect %v lacks %q:\n%s", tc.args, w, out)
			}
		}
	}
	if got := strings.Count(inspect("picks", "-n", "2", "--admin", addr), "\n"); got != 3 {
		t.Errorf("picks -n 2: %d lines, want a header and 2 rows", got)
	}
	for _, what := range []string{"pools", "endpoints", "routes", "picks"} {
		out := inspect(what, "-o", "json", "--admin", addr)
		if !json.Valid([]byte(out)) {
			t.Errorf("inspect %s -o json is not JSON: %.200s", what, out)
		}
	}
}

func TestInspectUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"inspect"}, 2, "WHAT"},
		{[]string{"inspect", "pool"}, 2, `did you mean "pools"`},
		{[]string{"inspect", "pools", "--model", "m"}, 2, "--model is a flag of inspect explain"},
		{[]string{"inspect", "routes", "-n", "3"}, 2, "-n is a flag of inspect picks"},
		{[]string{"inspect", "explain"}, 2, "--model M --prompt TEXT"},
		{[]string{"inspect", "explain", "--body", "f.json", "--model", "m"}, 2, "--body replaces"},
		{[]string{"inspect", "pools", "-o", "yaml"}, 2, "table or json"},
		{[]string{"inspect", "pools", "extra"}, 2, "unexpected argument"},
		{[]string{"inspect", "pools", "--admin", "127.0.0.1:1", "--timeout", "2s"}, 1, "cannot reach the admin listener at http://127.0.0.1:1"},
	} {
		err := run(context.Background(), tc.args, &bytes.Buffer{}, &bytes.Buffer{})
		if exitCode(err) != tc.code || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v (exit %d); want exit %d and %q", tc.args, err, exitCode(err), tc.code, tc.want)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"inspect", "explain", "--help"}, &out, &bytes.Buffer{}); err != nil || !strings.Contains(out.String(), "kvgate inspect explain --model M --prompt TEXT") {
		t.Errorf("--help: %v\n%s", err, out.String())
	}
}
