package main

import (
	"strings"
	"testing"
)

func TestReadAndDraw(t *testing.T) {
	in := "haproxy 500 0.09\nhaproxy 2000 0.06\nkvgate 500 0.1\nkvgate 2000 -\n\ncaddy 500 0.2\n"
	series, order, err := read(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, ",") != "haproxy,kvgate,caddy" || len(series["haproxy"]) != 2 || len(series["kvgate"]) != 1 {
		t.Fatalf("order %v series %v: want three proxies, the \"-\" point skipped", order, series)
	}
	var b strings.Builder
	if err := svg(&b, "t <1>", series, order); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "haproxy", "kvgate", "caddy", "t &lt;1&gt;", "0.090"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

func TestReadRejects(t *testing.T) {
	for _, in := range []string{"kvgate 500\n", "kvgate x 0.1\n", "kvgate 500 -1\n"} {
		if _, _, err := read(strings.NewReader(in)); err == nil {
			t.Errorf("read(%q) accepted", in)
		}
	}
	if err := svg(&strings.Builder{}, "", nil, nil); err == nil {
		t.Error("svg with no data accepted")
	}
}
