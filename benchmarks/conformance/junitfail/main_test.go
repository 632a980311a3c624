package main

import (
	"slices"
	"strings"
	"testing"
)

func TestFailed(t *testing.T) {
	cases := []struct {
		name, xml string
		want      []string
		err       bool
	}{
		{"none", `<testsuites><testsuite package="generic/1"><testcase/></testsuite></testsuites>`, nil, false},
		{"positions", `<testsuites>
  <testsuite package="http2/4.2"><testcase/><testcase/><testcase><failure>x</failure></testcase></testsuite>
  <testsuite package="http2/6.5.3"><testcase><error/></testcase><testcase><skipped/></testcase></testsuite>
</testsuites>`, []string{"http2/4.2/3", "http2/6.5.3/1"}, false},
		{"garbage", `not xml`, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := failed(strings.NewReader(c.xml))
			if (err != nil) != c.err || !slices.Equal(got, c.want) {
				t.Fatalf("got %q %v; want %q (error %v)", got, err, c.want, c.err)
			}
		})
	}
}

func FuzzFailed(f *testing.F) {
	f.Add(`<testsuites><testsuite package="a"><testcase><failure/></testcase></testsuite></testsuites>`)
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := failed(strings.NewReader(s))
		if err != nil && ids != nil {
			t.Fatal("ids with an error")
		}
	})
}
