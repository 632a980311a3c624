package proxy

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/kvgate/kvgate/config"
)

// fakeHeaders is a HeaderReader over a list of fields.
type fakeHeaders []Field

func (f fakeHeaders) Get(name string) string {
	for _, h := range f {
		if equalFoldASCII(h.Name, name) {
			return h.Value
		}
	}
	return ""
}
func (f fakeHeaders) Len() int { return len(f) }
func (f fakeHeaders) Each(v FieldVisitor) {
	for _, h := range f {
		v.Field(h.Name, h.Value)
	}
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i]|0x20, b[i]|0x20
		if x != y {
			return false
		}
	}
	return true
}

type sink map[string][]string

func (s sink) Add(name, value string) { s[name] = append(s[name], value) }

func TestCopyRequestHeaders(t *testing.T) {
	cases := []struct {
		name    string
		trusted []string
		xfcc    bool
		remote  string
		tls     bool
		in      fakeHeaders
		want    map[string][]string
	}{
		{
			name: "untrusted peer: forwarding fields replaced", remote: "192.0.2.7:5000",
			in: fakeHeaders{{"X-Forwarded-For", "203.0.113.1"}, {"X-Forwarded-Proto", "https"}, {"Forwarded", "for=203.0.113.1"}, {"X-App", "1"}},
			want: map[string][]string{"X-App": {"1"}, "X-Forwarded-For": {"192.0.2.7"}, "X-Forwarded-Proto": {"http"},
				"X-Forwarded-Host": {"api.example.com"}, "Forwarded": {"for=192.0.2.7;proto=http;host=api.example.com"}},
		},
		{
			name: "trusted proxy: chain extended", remote: "10.0.0.5:5000", trusted: []string{"10.0.0.0/8"}, tls: true,
			in: fakeHeaders{{"X-Forwarded-For", "203.0.113.1"}, {"X-Forwarded-Proto", "https"}, {"X-Forwarded-Host", "front.example.com"}, {"Forwarded", "for=203.0.113.1"}},
			want: map[string][]string{"X-Forwarded-For": {"203.0.113.1, 10.0.0.5"}, "X-Forwarded-Proto": {"https"},
				"X-Forwarded-Host": {"front.example.com"}, "Forwarded": {"for=203.0.113.1, for=10.0.0.5;proto=https;host=api.example.com"}},
		},
		{
			name: "ipv6 peer quoted in Forwarded", remote: "[2001:db8::1]:5000",
			want: map[string][]string{"X-Forwarded-For": {"2001:db8::1"}, "X-Forwarded-Proto": {"http"},
				"X-Forwarded-Host": {"api.example.com"}, "Forwarded": {`for="[2001:db8::1]";proto=http;host=api.example.com`}},
		},
		{
			name: "hop-by-hop and Connection-named fields dropped, client cert header stripped", remote: "192.0.2.7:5000",
			in: fakeHeaders{{"Connection", "close, X-Secret"}, {"X-Secret", "s"}, {"Keep-Alive", "1"}, {"Upgrade", "h2c"},
				{"Proxy-Authorization", "p"}, {"X-Forwarded-Client-Cert", "By=evil"}, {"Host", "h"}, {"X-Request-Id", "old"}},
			want: map[string][]string{"X-Forwarded-For": {"192.0.2.7"}, "X-Forwarded-Proto": {"http"},
				"X-Forwarded-Host": {"api.example.com"}, "Forwarded": {"for=192.0.2.7;proto=http;host=api.example.com"}},
		},
		{
			name: "client cert header kept when the listener trusts it", remote: "192.0.2.7:5000", xfcc: true,
			in: fakeHeaders{{"X-Forwarded-Client-Cert", "By=a;URI=b"}},
			want: map[string][]string{"X-Forwarded-Client-Cert": {"By=a;URI=b"}, "X-Forwarded-For": {"192.0.2.7"}, "X-Forwarded-Proto": {"http"},
				"X-Forwarded-Host": {"api.example.com"}, "Forwarded": {"for=192.0.2.7;proto=http;host=api.example.com"}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			trusted, err := parsePrefixes(c.trusted)
			if err != nil {
				t.Fatal(err)
			}
			l := &Listener{trusted: trusted, cfg: config.Listener{TrustForwardedClientCert: c.xfcc}}
			x := &Exchange{listener: l, remote: netip.MustParseAddrPort(c.remote), tls: c.tls, host: "api.example.com", hdr: c.in, requestID: "rid"}
			got := sink{}
			copyRequestHeaders(x, got)
			c.want["X-Request-Id"] = []string{"rid"}
			if !reflect.DeepEqual(map[string][]string(got), c.want) {
				t.Fatalf("got  %v\nwant %v", got, c.want)
			}
		})
	}
}

func TestEnsureRequestID(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"abc-123", "abc-123"},
		{"", ""},                        // generated
		{"bad id\x01", ""},              // not printable: replaced
		{string(make([]byte, 200)), ""}, // too long: replaced
	} {
		x := &Exchange{hdr: fakeHeaders{{"X-Request-Id", c.in}}}
		ensureRequestID(x)
		if c.want != "" && x.requestID != c.want || c.want == "" && len(x.requestID) != 32 {
			t.Errorf("in %q: id %q", c.in, x.requestID)
		}
	}
}

func TestIsHopByHop(t *testing.T) {
	for _, h := range hopByHop {
		for _, name := range []string{h, strings.ToUpper(h), strings.ToUpper(h[:1]) + h[1:]} {
			if !isHopByHop(name, "") {
				t.Errorf("isHopByHop(%q) = false, want true", name)
			}
		}
	}
	for _, tt := range []struct {
		name, connection string
		want             bool
	}{
		{"", "", false},
		{"tf", "", false},
		{"trailers", "", false},
		{"upgradE", "", true},
		{"connectio", "", false},
		{"keep-alivf", "", false},
		{"x-connection", "", false},
		{"proxy-authorizatio", "", false},
		{"Content-Length", "", false},
		{"Host", "", false},
		{"X-Foo", "close, x-foo", true},
		{"X-Foo", "x-fo", false},
		{"X-Foo", " X-FOO ,keep-alive", true},
		{"X-Bar", "close, x-foo", false},
	} {
		if got := isHopByHop(tt.name, tt.connection); got != tt.want {
			t.Errorf("isHopByHop(%q, %q) = %v, want %v", tt.name, tt.connection, got, tt.want)
		}
	}
}

func TestAppendQuotedIfNeeded(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"api.example.com", "api.example.com"},
		{"", ""},
		{"127.0.0.1:8080", `"127.0.0.1:8080"`},
		{"[2001:db8::1]:443", `"[2001:db8::1]:443"`},
		{`a"b\c`, `"a\"b\\c"`},
	} {
		if got := string(appendQuotedIfNeeded([]byte("host="), tt.in)); got != "host="+tt.want {
			t.Errorf("appendQuotedIfNeeded(%q) = %s, want host=%s", tt.in, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		_ = appendQuotedIfNeeded(make([]byte, 0, 64)[:0], "127.0.0.1:8080")
	}); n > 1 {
		t.Errorf("%v allocations per call, want only the test's own buffer", n)
	}
}
