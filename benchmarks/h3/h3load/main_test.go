package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvgate/kvgate/benchmarks/internal/loadstat"
	"github.com/quic-go/quic-go/http3"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(config) bool
	}{
		{"defaults", []string{"-url", "https://127.0.0.1:8443/1k.bin"}, "", func(c config) bool {
			return c.streams == 32 && c.conns == 4 && c.duration == 10*time.Second && c.size == -1
		}},
		{"all set", []string{"-url", "https://127.0.0.1:1/", "-c", "8", "-conns", "2", "-d", "1s", "-size", "1024"}, "", func(c config) bool {
			return c.streams == 8 && c.conns == 2 && c.duration == time.Second && c.size == 1024
		}},
		{"no url", nil, "-url must be https", nil},
		{"http", []string{"-url", "http://127.0.0.1:1/"}, "-url must be https", nil},
		{"more conns than streams", []string{"-url", "https://127.0.0.1:1/", "-c", "2", "-conns", "3"}, "more than -c", nil},
		{"zero duration", []string{"-url", "https://127.0.0.1:1/", "-d", "0s"}, "must be positive", nil},
		{"unknown flag", []string{"-x"}, "see -h", nil},
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
	var lat []time.Duration
	for i := 10; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*ms)
	}
	ts := []loadstat.Tally{{OK: 10, Lat: lat}, {Errs: 1, FirstErr: "timeout"}}
	r := summarize(ts, 4*time.Second, config{streams: 2, conns: 1})
	want := Report{Requests: 10, Errors: 1, FirstError: "timeout", Seconds: 4, PerSecond: 2.5, P50Ms: 5, P90Ms: 9, P99Ms: 10, Streams: 2, Connections: 1}
	if r != want {
		t.Fatalf("summarize = %+v\nwant        %+v", r, want)
	}
}

// TestRun serves HTTP/3 on loopback and checks that h3load counts good
// responses, and counts a wrong body size as an error.
func TestRun(t *testing.T) {
	body := strings.Repeat("k", 100)
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http3.Server{
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{testCert(t)}, NextProtos: []string{http3.NextProtoH3}},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(body))
		}),
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(uc) }()
	defer func() { _ = srv.Close(); _ = uc.Close(); <-done }()
	url := "https://127.0.0.1:" + strconv.Itoa(uc.LocalAddr().(*net.UDPAddr).Port) + "/x"

	for _, tt := range []struct {
		size     string
		wantGood bool
	}{{"100", true}, {"-1", true}, {"99", false}} {
		var out strings.Builder
		if err := run(context.Background(), []string{"-url", url, "-c", "4", "-conns", "2", "-d", "300ms", "-size", tt.size}, &out); err != nil {
			t.Fatal(err)
		}
		var r Report
		if err := json.Unmarshal([]byte(out.String()), &r); err != nil {
			t.Fatalf("output %q: %v", out.String(), err)
		}
		if tt.wantGood && (r.Requests == 0 || r.Errors != 0) || !tt.wantGood && (r.Requests != 0 || r.Errors == 0) {
			t.Fatalf("-size %s: %+v", tt.size, r)
		}
	}
}

func testCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
