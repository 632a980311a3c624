package config

import (
	"os"
	"testing"
)

func benchParse(b *testing.B, file string, wantErr bool) {
	data, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, file); (err != nil) != wantErr {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseQuickstart: the smallest configuration, start to finish.
func BenchmarkParseQuickstart(b *testing.B) { benchParse(b, "../examples/quickstart.yaml", false) }

// BenchmarkParseFull: every key, as on a reload of a large configuration.
func BenchmarkParseFull(b *testing.B) { benchParse(b, "../examples/full.yaml", false) }

// BenchmarkParseManyErrors: a file with 30 problems, as `kvgate validate` sees it.
func BenchmarkParseManyErrors(b *testing.B) { benchParse(b, "testdata/many_errors.yaml", true) }

// BenchmarkValidateFull: validation alone, without YAML parsing.
func BenchmarkValidateFull(b *testing.B) {
	c, err := Load("../examples/full.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(c); err != nil {
			b.Fatal(err)
		}
	}
}
