package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join("..", "..", "examples", "quickstart.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`listeners:
  - {name: plain, address: "127.0.0.1:8080"}
routes:
  - {name: a, backends: [{pool: backend}]}
  - {name: b, backends: [{pool: backnd}]}
pools:
  - {name: backend, endpoints: ["127.0.0.1:8000"], balancr: round-robin}
`), 0o600)
	cases := []struct {
		name string
		path string
		code int
		want []string
	}{
		{"valid example", good, 0, []string{"is valid"}},
		{"every error with file:line, key and fix", bad, 1, []string{
			"bad.yaml:5:", "routes[1].backends[0].pool", `did you mean "backend"`,
			"bad.yaml:7:", "pools[0].balancr", `did you mean "balancer"`,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			err := runValidate([]string{"--config", c.path}, &out)
			if code := codeOf(err); code != c.code {
				t.Fatalf("exit %d, want %d (err %v)\n%s", code, c.code, err, out.String())
			}
			for _, w := range c.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func codeOf(err error) int {
	if err == nil {
		return 0
	}
	return exitCode(err)
}

func TestUnknownCommand(t *testing.T) {
	if code := codeOf(run(t.Context(), []string{"frobnicate"}, io.Discard, io.Discard)); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
}
