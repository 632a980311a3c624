package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestGolden loads every broken configuration under testdata/ and compares
// the full error text with its .golden file. Regenerate with
// `go test ./config -update` and review the diff.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 7 {
		t.Fatalf("found %d golden inputs, want at least 7", len(files))
	}
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			_, err := Load(filepath.ToSlash(in))
			if err == nil {
				t.Fatalf("Load(%s) succeeded; every testdata/*.yaml must be broken", in)
			}
			var es *Errors
			if !errors.As(err, &es) || len(*es) == 0 {
				t.Fatalf("error is %T, want a non-empty *Errors", err)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(in, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./config -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s (go test ./config -update rewrites it)\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

// TestGoldenCovers checks that the golden files contain the cases the
// configuration contract promises to explain.
func TestGoldenCovers(t *testing.T) {
	cases := []struct{ file, want string }{
		{"unknown_key.golden", `listeners[0].adress: unknown key "adress"; did you mean "address"?`},
		{"wrong_type.golden", `routes[0].backends[0].weight: expected a whole number, got the string "heavy"`},
		{"bad_duration.golden", `routes[0].timeouts.idle: "5 minutes" is not a duration`},
		{"bad_duration.golden", `routes[0].timeouts.request: -5s is negative`},
		{"unknown_pool.golden", `unknown_pool.yaml:10:15: routes[1].backends[0].pool: no pool named "backnd"; did you mean "backend"?`},
		{"duplicate_names.golden", `listeners[1].name: listener name "plain" is already used by listeners[0]`},
		{"duplicate_names.golden", `pools[1].endpoints: key "endpoints" is repeated`},
		{"http3_without_tls.golden", `listeners[0].protocols[2]: http3 needs tls`},
		{"syntax_error.golden", `syntax_error.yaml:4: yaml:`},
		{"bad_paths.golden", `bad_paths.yaml:10:19: paths.escapedSlashes: unknown escapedSlashes "decoded"; did you mean "decode"?`},
	}
	for _, c := range cases {
		b, err := os.ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), c.want) {
			t.Errorf("%s does not contain %q", c.file, c.want)
		}
	}
	b, err := os.ReadFile(filepath.Join("testdata", "many_errors.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n < 25 {
		t.Errorf("many_errors.golden has %d problems, want every one of the 25+ in the file", n)
	}
}
