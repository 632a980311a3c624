package main

import (
	"errors"
	"flag"
	"testing"
)

// The command line: --help is not an error (exit 0), a bad flag or a stray
// argument is a usage error (exit 2), and good flags parse.
func TestParseCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		help  bool
		usage bool
	}{
		{[]string{"--help"}, true, false},
		{[]string{"-h"}, true, false},
		{[]string{"--bogus"}, false, true},
		{[]string{"--runs", "x"}, false, true},
		{[]string{"stray"}, false, true},
		{[]string{"--workload", "agentic", "--runs", "2"}, false, false},
	} {
		_, err := parse(tc.args)
		if got := errors.Is(err, flag.ErrHelp); got != tc.help {
			t.Errorf("%q: help = %v (%v), want %v", tc.args, got, err, tc.help)
		}
		if got := errors.As(err, new(usageErr)); got != tc.usage {
			t.Errorf("%q: usage error = %v (%v), want %v", tc.args, got, err, tc.usage)
		}
		if !tc.help && !tc.usage && err != nil {
			t.Errorf("%q: %v", tc.args, err)
		}
	}
}
