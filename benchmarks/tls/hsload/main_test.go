package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kvgate/kvgate/benchmarks/internal/loadstat"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(config) bool
	}{
		{"defaults", []string{"-url", "https://127.0.0.1:8443/1k.bin"}, "", func(c config) bool {
			return c.conns == 16 && c.duration == 10*time.Second && !c.resume && c.curve == tls.X25519 && c.target.Path == "/1k.bin"
		}},
		{"resume and curve", []string{"-url", "https://localhost:1/", "-resume", "-c", "3", "-d", "2s", "-curve", "P256"}, "", func(c config) bool {
			return c.resume && c.conns == 3 && c.duration == 2*time.Second && c.curve == tls.CurveP256
		}},
		{"port and path filled in", []string{"-url", "https://example.test"}, "", func(c config) bool {
			return c.target.Host == "example.test:443" && c.target.Path == "/"
		}},
		{"plain", []string{"-url", "http://127.0.0.1/", "-plain"}, "", func(c config) bool {
			return c.plain && c.target.Host == "127.0.0.1:80"
		}},
		{"plain with https url", []string{"-url", "https://127.0.0.1:1/", "-plain"}, "-url must be http://", nil},
		{"plain and resume", []string{"-url", "http://127.0.0.1:1/", "-plain", "-resume"}, "exclude each other", nil},
		{"no url", nil, "-url must be https", nil},
		{"plain http", []string{"-url", "http://127.0.0.1:80/"}, "-url must be https", nil},
		{"zero clients", []string{"-url", "https://127.0.0.1:1/", "-c", "0"}, "must be positive", nil},
		{"unknown curve", []string{"-url", "https://127.0.0.1:1/", "-curve", "x448"}, "not one of", nil},
		{"unknown flag", []string{"-bogus"}, "see -h", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parse(%q) error = %v, want one containing %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse(%q): %v", tt.args, err)
			}
			if !tt.check(c) {
				t.Fatalf("parse(%q) = %+v", tt.args, c)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	ts := []tally{
		{Tally: loadstat.Tally{OK: 3, Lat: []time.Duration{3 * ms, 1 * ms, 2 * ms}}, resumed: 2},
		{Tally: loadstat.Tally{OK: 1, Errs: 2, FirstErr: "boom", Lat: []time.Duration{10 * ms}}},
		{},
	}
	r := summarize(ts, 2*time.Second, config{conns: 3, resume: true})
	want := Report{Handshakes: 4, Resumed: 2, Errors: 2, FirstError: "boom", Seconds: 2, PerSecond: 2, P50Ms: 2, P99Ms: 10, Connections: 3, ResumeEnabled: true}
	if r != want {
		t.Fatalf("summarize = %+v\nwant        %+v", r, want)
	}
	if e := summarize(nil, 0, config{}); e.PerSecond != 0 || e.P99Ms != 0 {
		t.Fatalf("empty summarize = %+v", e)
	}
}

// TestRunPlain checks the no-TLS baseline against a plain HTTP server.
func TestRunPlain(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	var out strings.Builder
	if err := run(context.Background(), []string{"-url", srv.URL + "/", "-plain", "-c", "2", "-d", "200ms"}, &out); err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal([]byte(out.String()), &r); err != nil {
		t.Fatal(err)
	}
	if r.Handshakes < 2 || r.Errors != 0 || r.Resumed != 0 {
		t.Fatalf("plain: %+v", r)
	}
}

// TestRunResumes checks against a real TLS 1.3 server on loopback that -resume
// makes handshakes resume and its absence keeps every one full.
func TestRunResumes(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	srv.StartTLS()
	defer srv.Close()
	for _, resume := range []bool{false, true} {
		args := []string{"-url", srv.URL + "/x", "-c", "2", "-d", "300ms"}
		if resume {
			args = append(args, "-resume")
		}
		var out strings.Builder
		if err := run(context.Background(), args, &out); err != nil {
			t.Fatal(err)
		}
		var r Report
		if err := json.Unmarshal([]byte(out.String()), &r); err != nil {
			t.Fatalf("output %q: %v", out.String(), err)
		}
		if r.Handshakes < 2 || r.Errors != 0 {
			t.Fatalf("resume=%v: %+v", resume, r)
		}
		if resume && r.Resumed == 0 || !resume && r.Resumed != 0 {
			t.Fatalf("resume=%v: %d of %d handshakes resumed", resume, r.Resumed, r.Handshakes)
		}
	}
}
