package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"testing"
	"time"
)

// logExchange is an Exchange as the access log sees it at the end of a
// request, with the request-controlled strings given.
func logExchange(path, host, method, requestID, peer string) *Exchange {
	return &Exchange{
		listener:  &Listener{name: "plain"},
		remote:    netip.MustParseAddrPort("[fe80::1%eth0]:40000"),
		proto:     "HTTP/1.1",
		method:    method,
		host:      host,
		path:      path,
		requestID: requestID,
		peerID:    peer,
		route:     "r",
		pool:      "b",
		ep:        &endpoint{addr: "10.0.0.1:8000"},
		errKind:   "upstream_reset",
		start:     time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
	}
}

// logLine writes one access-log line for x into memory and returns it.
func logLine(x *Exchange, status int, n int64, err error) []byte {
	var buf bytes.Buffer
	a := &accessLog{w: bufio.NewWriter(&buf)}
	a.log(x, status, n, time.Since(x.start), err)
	_ = a.w.Flush()
	return buf.Bytes()
}

// checkLogLine fails unless line is one JSON object whose request-controlled
// fields read back as sent, each byte that is not UTF-8 as one U+FFFD.
func checkLogLine(t *testing.T, line []byte, want map[string]string) {
	t.Helper()
	if !bytes.HasSuffix(line, []byte("\n")) || bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("access log is not one line: %q", line)
	}
	if !json.Valid(line) {
		t.Fatalf("access log line is not JSON: %q", line)
	}
	var got map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if w := string([]rune(v)); got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
}

// A request for /v1/a\xffb (or any path, Host or method bytes fasthttp lets
// through) writes a line that JSON log shippers accept.
func TestAccessLogLineIsJSON(t *testing.T) {
	for _, tc := range []struct{ path, host, method, id, peer, detail string }{
		{"/v1/a\xffb", "api.example.com", "GET", "abc", "", ""},
		{"/v1/\"},\"status\":200,\"x\":\"", "h\xfe", "P\x01ST", "id\x7f", "spiffe://td/\xc3", "read \x00\xff: reset"},
		{"/v1/\xed\xa0\x80\xf4\x90\x80\x80\\", "\u2028", "GET", "", "", "\t\n\r\b\f"},
	} {
		x := logExchange(tc.path, tc.host, tc.method, tc.id, tc.peer)
		var err error
		if tc.detail != "" {
			err = errors.New(tc.detail)
		}
		line := logLine(x, 502, 7, err)
		want := map[string]string{"path": tc.path, "host": tc.host, "method": tc.method, "request_id": tc.id,
			"remote": "fe80::1%eth0", "listener": "plain", "route": "r", "error": "upstream_reset"}
		if tc.peer != "" {
			want["peer"] = tc.peer
		}
		if tc.detail != "" {
			want["detail"] = tc.detail
		}
		checkLogLine(t, line, want)
	}
}

// FuzzAccessLogLine builds access-log lines from arbitrary request bytes.
func FuzzAccessLogLine(f *testing.F) {
	f.Add("/v1/a\xffb", "api.example.com:443", "POST", "0123abcd", "spiffe://example.org/ns/a/sa/b", "")
	f.Add("/v1/\x01\"\\", "h\xfe\xff", "G\x00T", "\x7f", "", "upstream \xc3\x28 reset")
	f.Fuzz(func(t *testing.T, path, host, method, id, peer, detail string) {
		x := logExchange(path, host, method, id, peer)
		var err error
		if detail != "" {
			err = errors.New(detail)
		}
		want := map[string]string{"path": path, "host": host, "method": method, "request_id": id}
		if peer != "" {
			want["peer"] = peer
		}
		if detail != "" {
			want["detail"] = detail
		}
		checkLogLine(t, logLine(x, 200, 1, err), want)
	})
}

// BenchmarkAccessLogLine is the access log's cost per request: one line
// built in a pooled buffer and written to a buffered writer.
func BenchmarkAccessLogLine(b *testing.B) {
	x := logExchange("/v1/chat/completions", "api.example.com:8443", "POST", "0123456789abcdef0123456789abcdef", "spiffe://example.org/ns/ai/sa/client")
	x.errKind = ""
	a := &accessLog{w: bufio.NewWriterSize(io.Discard, 64<<10)}
	b.ReportAllocs()
	for b.Loop() {
		a.log(x, 200, 1024, 1500*time.Microsecond, nil)
	}
}
