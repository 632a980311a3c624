package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Every error body is JSON whatever bytes the message carries: Go quoting
// (\x01, \xff) is not JSON, and an OpenAI client then fails on the body
// instead of reading the error.
func TestErrorJSONAnyBytes(t *testing.T) {
	for _, msg := range []string{
		"plain", "a\x01\xffb", "quote \" and \\ backslash", "\x00\x1f\x7f", "tab\tnew\nline\r",
		"\xed\xa0\x80 lone surrogate", "héllo ☺ 😀", "\xf4\x90\x80\x80 past U+10FFFF", "\u2028\u2029",
	} {
		body := errorJSON(errNotFound, "no_route", msg)
		if !json.Valid(body) {
			t.Errorf("errorJSON(%q) is not JSON: %s", msg, body)
			continue
		}
		var v struct {
			Error struct{ Message, Type, Code string } `json:"error"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		// Each byte that is not UTF-8 reads back as one U+FFFD, as []rune does it.
		if want := string([]rune(msg)); v.Error.Message != want {
			t.Errorf("errorJSON(%q) message = %q", msg, v.Error.Message)
		}
		if v.Error.Type != string(errNotFound) || v.Error.Code != "no_route" {
			t.Errorf("errorJSON(%q) = %s", msg, body)
		}
	}
}

// A request whose path or Host holds bytes that are not UTF-8, sent raw to
// the HTTP/1.1 listener, gets a 404 whose body is JSON naming that path.
// fasthttp refuses control bytes in the request line with a 400, whose body
// must be JSON too.
func TestNoRouteRawPathIsJSON(t *testing.T) {
	p := startProxy(t, `routes:
  - {name: v2, matches: [{path: {type: PathPrefix, value: /v2/}}], backends: [{pool: b}]}
pools:
  - {name: b, endpoints: ["127.0.0.1:1"]}`)
	for _, tc := range []struct {
		path, host string
		status     int
	}{
		{"/v1/a\xffb", "x", 404},
		{"/v1/a\x01\xffb", "x", 400},
		{"/v1/\"}\\x\xc3", "x", 404},
		{"/v1/\xed\xa0\x80\xf4\x90\x80\x80", "x", 404},
		{"/v1/a", "h\xfe\xff", 404},
	} {
		c, err := net.Dial("tcp", p.Listener("plain").Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", tc.path, tc.host)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			c.Close()
			t.Fatalf("%q: %v", tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		c.Close()
		if !json.Valid(body) {
			t.Errorf("%q (Host %q): %d body is not JSON: %q", tc.path, tc.host, resp.StatusCode, body)
			continue
		}
		if resp.StatusCode != tc.status {
			t.Errorf("%q (Host %q): status %d, want %d; body %q", tc.path, tc.host, resp.StatusCode, tc.status, body)
			continue
		}
		msg, _, code := openAIError(t, string(body))
		want := strings.ReplaceAll(tc.path, `\`, "/") // the path as normalised (pathnorm.go)
		if tc.status == 404 && (code != "no_route" || !strings.Contains(msg, string([]rune(tc.host+want)))) {
			t.Errorf("%q (Host %q): code %q, message %q", tc.path, tc.host, code, msg)
		}
	}
}
