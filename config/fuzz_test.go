package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. It must never panic, and what it
// returns must be consistent: a *Errors whose problems all name the source and
// say something, or a configuration that validates again and that Default
// leaves unchanged. Seeds: testdata/fuzz/FuzzParse, testdata/*.yaml and the
// examples. Run: go test ./config -run '^$' -fuzz FuzzParse -fuzztime 60s
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	seeds = append(seeds, "../examples/quickstart.yaml", "../examples/full.yaml")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml")
		if err != nil {
			var es *Errors
			if !errors.As(err, &es) || len(*es) == 0 {
				t.Fatalf("error %T %v is not a non-empty *Errors", err, err)
			}
			for _, e := range *es {
				if e.File != "fuzz.yaml" || e.Msg == "" || e.Line < 0 || e.Column < 0 {
					t.Fatalf("malformed problem %+v", e)
				}
			}
			if c != nil {
				t.Fatal("Parse returned both a configuration and an error")
			}
			return
		}
		if err := Validate(c); err != nil {
			t.Fatalf("Parse accepted what Validate rejects:\n%v", err)
		}
		again, err := Parse(data, "fuzz.yaml")
		if err != nil {
			t.Fatalf("a second Parse of the same bytes failed: %v", err)
		}
		Default(again)
		if !reflect.DeepEqual(c, again) {
			t.Fatal("Default changed a configuration Parse had already defaulted")
		}
	})
}
