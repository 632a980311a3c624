// Package jsonstr appends JSON string literals (RFC 8259) to byte slices.
// It is the one place kvgate escapes text for JSON it writes by hand: error
// bodies and access-log lines in proxy, the model rewrite in router.
//
// It owns escaping and nothing else: it must not allocate, hold state, or
// know the documents its strings go into.
package jsonstr

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// Append appends s to dst as a JSON string literal, quotes included, and
// returns the extended slice. The result is valid JSON for any s: '"' and
// '\' are escaped, control characters (U+0000 to U+001F) become \b \t \n \f
// \r or \u00XX, each byte that is not part of valid UTF-8 (surrogate halves
// and code points past U+10FFFF included) becomes U+FFFD, and valid UTF-8
// passes through unchanged. It allocates only when dst lacks capacity.
func Append(dst []byte, s string) []byte {
	dst = append(dst, '"')
	done := 0 // s[:done] is already in dst
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				dst = append(dst, s[done:i]...)
				dst = append(dst, "\ufffd"...)
				done = i + 1
			}
			i += n
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		dst = append(dst, s[done:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		done = i
	}
	dst = append(dst, s[done:]...)
	return append(dst, '"')
}
