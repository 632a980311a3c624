package proxy

import (
	"path"
	"strings"
	"testing"
	"unsafe"
)

var (
	optDefault = pathOptions{}
	optDecode  = pathOptions{escaped: escapedDecode}
	optKeep    = pathOptions{escaped: escapedKeep}
	optNoMerge = pathOptions{keepSlashes: true}
)

func TestNormalizePath(t *testing.T) {
	cases := []struct {
		name string
		in   string
		o    pathOptions
		want string    // when fault is pathOK
		f    pathFault // pathOK: must succeed
	}{
		// Already normal: returned as they are.
		{"root", "/", optDefault, "/", pathOK},
		{"plain", "/v1/chat/completions", optDefault, "/v1/chat/completions", pathOK},
		{"trailing slash", "/v1/", optDefault, "/v1/", pathOK},
		{"dots inside names", "/a/.b/c./..d/e../f.txt", optDefault, "/a/.b/c./..d/e../f.txt", pathOK},
		{"reserved escape kept", "/a%20b/%3F%23%25", optDefault, "/a%20b/%3F%23%25", pathOK},
		{"utf-8 bytes kept", "/caf\xc3\xa9", optDefault, "/caf\xc3\xa9", pathOK},

		// RFC 3986 §5.2.4.
		{"5.2.4 example 1", "/a/b/c/./../../g", optDefault, "/a/g", pathOK},
		{"5.2.4 example 2", "/mid/content=5/../6", optDefault, "/mid/6", pathOK},

		// RFC 3986 §5.4.1 and §5.4.2, as paths merged with the base "/b/c/d;p" (§5.2.3).
		{"5.4 ./g", "/b/c/./g", optDefault, "/b/c/g", pathOK},
		{"5.4 g/", "/b/c/g/", optDefault, "/b/c/g/", pathOK},
		{"5.4 /./g", "/./g", optDefault, "/g", pathOK},
		{"5.4 /../g", "/../g", optDefault, "/g", pathOK},
		{"5.4 .", "/b/c/.", optDefault, "/b/c/", pathOK},
		{"5.4 ./", "/b/c/./", optDefault, "/b/c/", pathOK},
		{"5.4 ..", "/b/c/..", optDefault, "/b/", pathOK},
		{"5.4 ../", "/b/c/../", optDefault, "/b/", pathOK},
		{"5.4 ../g", "/b/c/../g", optDefault, "/b/g", pathOK},
		{"5.4 ../..", "/b/c/../..", optDefault, "/", pathOK},
		{"5.4 ../../", "/b/c/../../", optDefault, "/", pathOK},
		{"5.4 ../../g", "/b/c/../../g", optDefault, "/g", pathOK},
		{"5.4 ../../../g", "/b/c/../../../g", optDefault, "/g", pathOK},
		{"5.4 ../../../../g", "/b/c/../../../../g", optDefault, "/g", pathOK},
		{"5.4 g.", "/b/c/g.", optDefault, "/b/c/g.", pathOK},
		{"5.4 .g", "/b/c/.g", optDefault, "/b/c/.g", pathOK},
		{"5.4 g..", "/b/c/g..", optDefault, "/b/c/g..", pathOK},
		{"5.4 ..g", "/b/c/..g", optDefault, "/b/c/..g", pathOK},
		{"5.4 ./../g", "/b/c/./../g", optDefault, "/b/g", pathOK},
		{"5.4 ./g/.", "/b/c/./g/.", optDefault, "/b/c/g/", pathOK},
		{"5.4 g/./h", "/b/c/g/./h", optDefault, "/b/c/g/h", pathOK},
		{"5.4 g/../h", "/b/c/g/../h", optDefault, "/b/c/h", pathOK},
		{"5.4 g;x=1/./y", "/b/c/g;x=1/./y", optDefault, "/b/c/g;x=1/y", pathOK},
		{"5.4 g;x=1/../y", "/b/c/g;x=1/../y", optDefault, "/b/c/y", pathOK},

		// RFC 3986 §6.2.2.
		{"6.2.2 example", "/./b/../b/%63/%7bfoo%7d", optDefault, "/b/c/%7Bfoo%7D", pathOK},
		{"6.2.2.1 hex case", "/%3a%2c%e2%82%ac", optDefault, "/%3A%2C%E2%82%AC", pathOK},
		{"6.2.2.2 unreserved decoded", "/%41%5a%61%7a%30%39%2D%2E%5F%7E", optDefault, "/AZaz09-._~", pathOK},

		// The bypasses of a DENY on /admin and /admin/*.
		{"encoded a", "/%61dmin", optDefault, "/admin", pathOK},
		{"encoded m", "/ad%6din", optDefault, "/admin", pathOK},
		{"encoded a, sub path", "/%61dmin/x", optDefault, "/admin/x", pathOK},
		{"double slash", "//admin", optDefault, "/admin", pathOK},
		{"many slashes", "///admin//x///", optDefault, "/admin/x/", pathOK},
		{"dot segment", "/./admin", optDefault, "/admin", pathOK},
		{"dot-dot segment", "/x/../admin", optDefault, "/admin", pathOK},
		{"dot-dot above root", "/../../admin", optDefault, "/admin", pathOK},
		{"encoded dot-dot", "/x/%2e%2e/admin", optDefault, "/admin", pathOK},
		{"half encoded dot-dot", "/x/.%2E/admin", optDefault, "/admin", pathOK},
		{"encoded dot", "/%2e/admin", optDefault, "/admin", pathOK},
		{"backslash", "/x\\..\\admin", optDefault, "/admin", pathOK},
		{"backslash run", "/\\\\admin\\", optDefault, "/admin/", pathOK},
		{"encoded slash refused", "/admin%2fx", optDefault, "", pathEscapedSlash},
		{"encoded backslash refused", "/admin%5Cx", optDefault, "", pathEscapedSlash},
		{"encoded slash decoded", "/admin%2fx", optDecode, "/admin/x", pathOK},
		{"encoded backslash decoded", "/x%5c..%5cadmin", optDecode, "/admin", pathOK},
		{"encoded traversal decoded", "/x/..%2F..%2Fadmin", optDecode, "/admin", pathOK},
		{"encoded slash kept", "/admin%2fx", optKeep, "/admin%2Fx", pathOK},
		{"encoded slash kept, normal", "/admin%2Fx", optKeep, "/admin%2Fx", pathOK},
		{"encoded traversal kept opaque", "/x/..%2F..%2Fadmin", optKeep, "/x/..%2F..%2Fadmin", pathOK},

		// mergeSlashes: false.
		{"no merge keeps //", "//admin", optNoMerge, "//admin", pathOK},
		{"no merge keeps empty segments", "/a//b/", optNoMerge, "/a//b/", pathOK},
		{"no merge, dot-dot eats an empty segment", "/a//../b", optNoMerge, "/a/b", pathOK},
		{"no merge, trailing dot-dot", "/a//..", optNoMerge, "/a/", pathOK},
		{"no merge, backslashes", "/a\\\\b", optNoMerge, "/a//b", pathOK},

		// Refused.
		{"empty", "", optDefault, "", pathNotAbsolute},
		{"relative", "admin", optDefault, "", pathNotAbsolute},
		{"asterisk", "*", optDefault, "", pathNotAbsolute},
		{"leading backslash", "\\admin", optDefault, "", pathNotAbsolute},
		{"leading escaped slash", "%2Fadmin", optDecode, "", pathNotAbsolute},
		{"encoded NUL", "/a%00b", optDefault, "", pathEncodedNUL},
		{"encoded NUL, kept slashes", "/a%00", optKeep, "", pathEncodedNUL},
		{"bad escape zz", "/%zz", optDefault, "", pathBadEscape},
		{"short escape", "/a%4", optDefault, "", pathBadEscape},
		{"lone percent", "/a%", optDefault, "", pathBadEscape},
		{"half hex", "/a%4g", optDefault, "", pathBadEscape},
		{"space", "/a b", optDefault, "", pathControl},
		{"tab", "/a\tb", optDefault, "", pathControl},
		{"NUL byte", "/a\x00", optDefault, "", pathControl},
		{"newline", "/a\r\nX: y", optDefault, "", pathControl},
		{"DEL", "/a\x7f", optDefault, "", pathControl},
		{"fragment", "/a#b", optDefault, "", pathFragment},
		{"fragment after a rewrite", "/%61#", optDefault, "", pathFragment},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _, f := normalizePath(c.in, c.o, nil)
			if f != c.f || got != c.want {
				t.Fatalf("normalizePath(%q) = %q, %v; want %q, %v", c.in, got, f, c.want, c.f)
			}
			if f != pathOK {
				if f.code() == "" || !strings.Contains(f.message(), ":") {
					t.Fatalf("fault %v has no code or no advice: %q", f, f.message())
				}
				return
			}
			if again, _, f := normalizePath(got, c.o, nil); f != pathOK || again != got {
				t.Fatalf("not idempotent: %q → %q (%v)", got, again, f)
			}
			if got == c.in && unsafe.StringData(got) != unsafe.StringData(c.in) {
				t.Fatalf("an already normal path %q was copied", c.in)
			}
		})
	}
}

// TestNormalizePathReusesBuffer: a rewrite goes into the caller's buffer,
// a normal path never touches it.
func TestNormalizePathReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 64)
	got, b, _ := normalizePath("/%61dmin", optDefault, buf)
	if got != "/admin" || unsafe.StringData(got) != unsafe.SliceData(buf[:1]) || cap(b) != 64 {
		t.Fatalf("rewrite %q did not land in the caller's buffer", got)
	}
	if n := testing.AllocsPerRun(100, func() { got, b, _ = normalizePath("/x/../%61dmin//y", optDefault, b) }); n != 0 || got != "/admin/y" {
		t.Fatalf("rewrite into a big enough buffer: %q, %v allocations", got, n)
	}
	if n := testing.AllocsPerRun(100, func() { got, _, _ = normalizePath("/v1/chat/completions", optDefault, nil) }); n != 0 {
		t.Fatalf("normal path: %v allocations", n)
	}
}

// TestNormalizeTarget covers what the Exchange adds around normalizePath:
// OPTIONS *, absolute-form targets and the query.
func TestNormalizeTarget(t *testing.T) {
	cases := []struct {
		name, proto, method, target string
		host, path, query           string    // want, when code is ""
		code                        errorCode // error code of the 400
	}{
		{"origin-form", "HTTP/1.1", "GET", "/a/../b?x=%2F&y", "h:1", "/b", "x=%2F&y", ""},
		{"OPTIONS *", "HTTP/1.1", "OPTIONS", "*", "h:1", "*", "", ""},
		{"GET *", "HTTP/1.1", "GET", "*", "", "", "", "invalid_request_target"},
		{"authority-form", "HTTP/1.1", "CONNECT", "example.com:443", "", "", "", "invalid_request_target"},
		{"absolute-form", "HTTP/1.1", "GET", "http://api.example.com:8080/v1/%61?q=1", "api.example.com:8080", "/v1/a", "q=1", ""},
		{"absolute-form https, upper-case scheme", "HTTP/1.0", "GET", "HTTPS://api.example.com/x//y", "api.example.com", "/x/y", "", ""},
		{"absolute-form without path", "HTTP/1.1", "GET", "http://api.example.com?q", "api.example.com", "/", "q", ""},
		{"absolute-form with dot segments", "HTTP/1.1", "GET", "http://a/x/../admin", "a", "/admin", "", ""},
		{"absolute-form without host", "HTTP/1.1", "GET", "http:///admin", "", "", "", "invalid_request_target"},
		{"absolute-form with userinfo", "HTTP/1.1", "GET", "http://u@evil/admin", "", "", "", "invalid_request_target"},
		{"absolute-form over HTTP/2", "HTTP/2.0", "GET", "http://a/x", "", "", "", "invalid_request_target"},
		{"other scheme", "HTTP/1.1", "GET", "ftp://a/x", "", "", "", "invalid_request_target"},
		{"fragment in query", "HTTP/1.1", "GET", "/a?b#c", "", "", "", "path_fragment"},
		{"control in query", "HTTP/1.1", "GET", "/a?b\x01", "", "", "", "path_control_character"},
		{"escaped slash", "HTTP/2.0", "GET", "/a%2Fb", "", "", "", "path_escaped_slash"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := &Exchange{proto: c.proto, method: c.method, host: "h:1"}
			x.path, x.query = cut(c.target, '?')
			r := x.normalizeTarget(optDefault)
			if c.code != "" {
				if r == nil || r.Status != 400 || x.errKind != c.code {
					t.Fatalf("%q: reply %+v, errKind %q; want 400 %s", c.target, r, x.errKind, c.code)
				}
				return
			}
			if r != nil || x.host != c.host || x.path != c.path || x.query != c.query {
				t.Fatalf("%q: reply %v, host %q path %q query %q; want %q %q %q", c.target, r, x.host, x.path, x.query, c.host, c.path, c.query)
			}
		})
	}
}

func TestDetachPath(t *testing.T) {
	x := &Exchange{}
	if r := x.normalizeTarget(optDefault); r == nil {
		t.Fatal("empty target accepted")
	}
	x = &Exchange{proto: "HTTP/1.1", path: "/%61dmin/x"}
	if r := x.normalizeTarget(optDefault); r != nil {
		t.Fatal(r.Status)
	}
	for _, s := range []string{x.path, x.path[3:]} {
		if d := x.detachPath(s); d != s || unsafe.StringData(d) == unsafe.StringData(s) {
			t.Fatalf("detachPath(%q) still points into pathBuf", s)
		}
	}
	other := "/v1/models"
	if d := x.detachPath(other); unsafe.StringData(d) != unsafe.StringData(other) {
		t.Fatal("detachPath copied a string that is not in pathBuf")
	}
}

// FuzzNormalizePath checks the invariants of a normal path: it starts with
// '/', has no dot segments, no "//" when merging, no escaped unreserved
// character, no lower-case hex, normalising it again changes nothing, and
// for paths of plain characters it names what path.Clean names.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/v1/chat/completions", "/%61dmin", "//admin", "/./admin", "/x/../admin",
		"/admin%2fx", "/a/b/c/./../../g", "/%2e%2E/", "/a\\..\\b", "/a%00", "/%zz", "/a#b", "*", "/a//..//b/."} {
		f.Add(s, true, uint8(0))
	}
	f.Add("/a%2F..%2f../b", false, uint8(1))
	f.Add("/a%2F..%5C../b//", true, uint8(2))
	f.Fuzz(func(t *testing.T, p string, merge bool, mode uint8) {
		o := pathOptions{keepSlashes: !merge, escaped: escapedSlashes(mode % 3)}
		out, _, fault := normalizePath(p, o, nil)
		if fault != pathOK {
			if out != "" {
				t.Fatalf("%q refused (%v) but returned %q", p, fault, out)
			}
			return
		}
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("%q → %q does not start with /", p, out)
		}
		if merge && strings.Contains(out, "//") {
			t.Fatalf("%q → %q has // while merging", p, out)
		}
		if strings.ContainsAny(out, "\\#") {
			t.Fatalf("%q → %q has a backslash or fragment", p, out)
		}
		for _, seg := range strings.Split(out[1:], "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("%q → %q has the dot segment %q", p, out, seg)
			}
		}
		for i := 0; i < len(out); i++ {
			if out[i] != '%' {
				continue
			}
			if i+2 >= len(out) || !isUpperHex(out[i+1]) || !isUpperHex(out[i+2]) {
				t.Fatalf("%q → %q has a malformed or lower-case escape at %d", p, out, i)
			}
			if v := unhex(out[i+1])<<4 | unhex(out[i+2]); isUnreserved(v) || v == 0 ||
				(v == '/' || v == '\\') && o.escaped != escapedKeep {
				t.Fatalf("%q → %q keeps the escape %s", p, out, out[i:i+3])
			}
		}
		if again, _, f := normalizePath(out, o, nil); f != pathOK || again != out {
			t.Fatalf("not idempotent: %q → %q → %q (%v)", p, out, again, f)
		}
		if !pathIsNormal(out, o) {
			t.Fatalf("%q → %q, which the fast path does not take as normal", p, out)
		}
		if merge && !strings.ContainsAny(p, "%\\") {
			want := path.Clean(p)
			if got := strings.TrimSuffix(out, "/"); got != want && !(out == "/" && want == "/") {
				t.Fatalf("%q → %q; path.Clean gives %q", p, out, want)
			}
		}
	})
}

// BenchmarkNormalizePath: an already normal path costs a scan and no
// allocation; a rewrite reuses the Exchange's buffer.
func BenchmarkNormalizePath(b *testing.B) {
	for _, c := range []struct{ name, p string }{
		{"normal", "/v1/chat/completions"},
		{"normal-escapes", "/v1/files/My%20Report%2C%20final.pdf"},
		{"rewrite", "//v1/./chat/%63ompletions"},
	} {
		b.Run(c.name, func(b *testing.B) {
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				_, buf, _ = normalizePath(c.p, optDefault, buf)
			}
		})
	}
}
