package main

import (
	"slices"
	"strings"
	"testing"
)

func TestFindings(t *testing.T) {
	in := `[{"id":"cert_chain_of_trust","severity":"CRITICAL","finding":"self signed"},
{"id":"BEAST","severity":"MEDIUM","finding":"vulnerable"},
{"id":"TLS1_3","severity":"OK","finding":"offered"},
{"id":"HSTS","severity":"MEDIUM","finding":"not offered"}]`
	got, err := findings(strings.NewReader(in))
	if want := []string{"MEDIUM BEAST: vulnerable"}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("got %q %v; want %q", got, err, want)
	}
	if _, err := findings(strings.NewReader("{")); err == nil {
		t.Fatal("broken JSON accepted")
	}
}

func FuzzFindings(f *testing.F) {
	f.Add(`[{"id":"x","severity":"HIGH","finding":"y"}]`)
	f.Fuzz(func(t *testing.T, s string) {
		out, err := findings(strings.NewReader(s))
		if err != nil && out != nil {
			t.Fatal("findings with an error")
		}
	})
}
