package jsonstr

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestAppend(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"plain /v1/chat", `"plain /v1/chat"`},
		{`say "hi" \ bye`, `"say \"hi\" \\ bye"`},
		{"\b\t\n\f\r", `"\b\t\n\f\r"`},
		{"\x00\x01\x1f\x7f", `"\u0000\u0001\u001f` + "\x7f\""},
		{"a\x01\xffb", "\"a\\u0001\ufffdb\""},
		{"héllo ☺ 😀 \ufffd", "\"héllo ☺ 😀 \ufffd\""},
		{"\xed\xa0\x80", "\"\ufffd\ufffd\ufffd\""},           // a UTF-16 surrogate half
		{"\xf4\x90\x80\x80", "\"\ufffd\ufffd\ufffd\ufffd\""}, // past U+10FFFF
		{"\xc3", "\"\ufffd\""},                               // cut short
		{"\xc0\xaf", "\"\ufffd\ufffd\""},                     // overlong '/'
		{"\u2028\u2029", "\"\u2028\u2029\""},
		{"<a>&", `"<a>&"`},
	}
	for _, tt := range tests {
		got := Append([]byte("x"), tt.in)
		if string(got) != "x"+tt.want {
			t.Errorf("Append(%q) = %s, want %s", tt.in, got[1:], tt.want)
		}
	}
}

// TestAppendNoAlloc: appending into a buffer with room allocates nothing.
func TestAppendNoAlloc(t *testing.T) {
	buf := make([]byte, 0, 256)
	for _, s := range []string{"/v1/chat/completions", "a\x01\xff\"\\b\n", "héllo 😀"} {
		if n := testing.AllocsPerRun(100, func() { buf = Append(buf[:0], s) }); n != 0 {
			t.Errorf("Append(%q) made %v allocations, want 0", s, n)
		}
	}
}

// FuzzJSONString: for any input the literal is valid JSON, and decoding it
// gives the input back, each byte that is not UTF-8 as one U+FFFD (which is
// what converting the string to []rune does).
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "/v1/a\x01\xffb", `"\`, "\xed\xa0\x80\u2028😀", "\x00\x7f\xc3("} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lit := Append(nil, s)
		if !json.Valid(lit) {
			t.Fatalf("Append(%q) = %s is not JSON", s, lit)
		}
		if !utf8.Valid(lit) {
			t.Fatalf("Append(%q) = %q is not UTF-8", s, lit)
		}
		var back string
		if err := json.Unmarshal(lit, &back); err != nil {
			t.Fatalf("Append(%q) = %s: %v", s, lit, err)
		}
		want := s
		if !utf8.ValidString(s) {
			want = string([]rune(s))
		}
		if back != want {
			t.Fatalf("Append(%q) = %s reads back as %q, want %q", s, lit, back, want)
		}
		// Appending keeps what dst held.
		if got := Append([]byte(`{"k":`), s); string(got) != `{"k":`+string(lit) {
			t.Fatalf("Append after a prefix = %s", got)
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	buf := make([]byte, 0, 256)
	for _, bc := range []struct{ name, s string }{
		{"ascii", "/v1/chat/completions?model=llama-3.1-8b-instruct"},
		{"escapes", "no route matches GET x/v1/a\x01\xff\"b on listener plain"},
		{"utf8", "héllo wörld ☺ 😀 こんにちは"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.s)))
			for b.Loop() {
				buf = Append(buf[:0], bc.s)
			}
		})
	}
}
