package openai

import (
	"bytes"
	"errors"
	"unicode/utf8"
)

// The scanner below is a small, allocation-free JSON reader over a byte slice.
// It validates structure (strings, numbers, literals, nesting) and reports two
// distinct failures: errEOF when the input ends inside a value (a truncated
// body, not an error for the caller) and errSyntax for anything else.
//
// It is deliberately lenient in two places where strictness buys nothing for
// routing: raw control characters inside strings and invalid UTF-8 are kept as
// they are. Every document encoding/json accepts, it accepts, up to maxDepth
// levels of nesting for value; skip, which passes over a value without
// looking inside, has no depth bound.
//
// Every reader in this package is built on it: Extract (extract.go), Model
// and RewriteModel (model.go), and the usage object a UsageScanner captures
// (usage.go). Nothing else in kvgate parses request or response JSON.

// maxDepth bounds object/array nesting so hostile bodies cannot recurse deeply.
const maxDepth = 256

var (
	errEOF    = errors.New("openai: body ends inside a JSON value")
	errSyntax = errors.New("openai: JSON syntax error")
)

type scanner struct {
	b     []byte
	i     int
	depth int
}

// ws skips insignificant whitespace.
func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte without consuming it, or errEOF.
func (s *scanner) peek() (byte, error) {
	s.ws()
	if s.i >= len(s.b) {
		return 0, errEOF
	}
	return s.b[s.i], nil
}

// str reads a string whose opening quote is at s.i. It returns the raw bytes
// between the quotes and whether they hold escapes. On errEOF raw is what was
// read so far, possibly ending in a partial escape.
func (s *scanner) str() (raw []byte, esc bool, err error) {
	start := s.i + 1
	j, q := start, -1
	// Most strings (keys, roles, short texts) end within a few bytes: a plain
	// loop beats two IndexByte calls there.
	for lim := min(len(s.b), start+32); j < lim; j++ {
		if c := s.b[j]; c == '"' {
			s.i = j + 1
			return s.b[start:j], false, nil
		} else if c == '\\' {
			break
		}
	}
	for {
		if q < j {
			k := bytes.IndexByte(s.b[j:], '"')
			if k < 0 {
				s.i = len(s.b)
				return s.b[start:], esc, errEOF
			}
			q = j + k
		}
		k := bytes.IndexByte(s.b[j:q], '\\')
		if k < 0 {
			s.i = q + 1
			return s.b[start:q], esc, nil
		}
		esc = true
		e := j + k
		if e+1 >= len(s.b) {
			s.i = len(s.b)
			return s.b[start:], esc, errEOF
		}
		switch s.b[e+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			j = e + 2
		case 'u':
			for h := e + 2; h < e+6; h++ {
				if h >= len(s.b) {
					s.i = len(s.b)
					return s.b[start:], esc, errEOF
				}
				if hexVal(s.b[h]) < 0 {
					return nil, esc, errSyntax
				}
			}
			j = e + 6
		default:
			return nil, esc, errSyntax
		}
	}
}

// value skips one value. When out is not nil the value is appended to it
// compacted (whitespace outside strings removed), even when it is truncated.
func (s *scanner) value(out *[]byte) error {
	c, err := s.peek()
	if err != nil {
		return err
	}
	switch {
	case c == '"':
		start := s.i
		_, _, err := s.str()
		if out != nil && err != errSyntax {
			*out = append(*out, s.b[start:s.i]...)
		}
		return err
	case c == '{' || c == '[':
		return s.container(out)
	case c == 't':
		return s.literal("true", out)
	case c == 'f':
		return s.literal("false", out)
	case c == 'n':
		return s.literal("null", out)
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number(out)
	}
	return errSyntax
}

// object reads the object at s.i, calling fn with the raw key (escapes not
// decoded; esc says whether it holds any) and the raw value of each member in
// order, values passed over with skip. s.i is just past the value while fn
// runs, and fn must not keep key or val. object returns nil once the object
// closes, errEOF when the input ends inside it and errSyntax otherwise; fn
// has seen the members before the end or the error.
func (s *scanner) object(fn func(key []byte, esc bool, val []byte)) error {
	c, err := s.peek()
	if err != nil {
		return err
	}
	if c != '{' {
		return errSyntax
	}
	s.i++
	if c, err = s.peek(); err != nil {
		return err
	}
	if c == '}' {
		s.i++
		return nil
	}
	for {
		key, esc, err := s.objKey()
		if err != nil {
			return err
		}
		if _, err := s.peek(); err != nil {
			return err
		}
		start := s.i
		if err := s.skip(); err != nil {
			return err
		}
		fn(key, esc, s.b[start:s.i])
		if done, err := s.next('}'); done || err != nil {
			return err
		}
	}
}

// skip passes over one value, like value(nil) but cheaper where only the
// level it is called at matters: strings, numbers and literals are checked
// as value checks them, while an object or array is passed over by its
// brackets alone. Strings inside it are read with str, so brackets and quotes
// in them do not count, but nothing else between the brackets is checked, and
// there is no depth bound since skip does not recurse. Every JSON value
// passes; some invalid ones do too (`[1 2}`). object uses it.
func (s *scanner) skip() error {
	c, err := s.peek()
	if err != nil {
		return err
	}
	if c != '{' && c != '[' {
		return s.value(nil)
	}
	depth := 0
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			if _, _, err := s.str(); err != nil {
				return err
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				s.i++
				return nil
			}
		}
		s.i++
		for s.i < len(s.b) && !structural[s.b[s.i]] {
			s.i++
		}
	}
	return errEOF
}

// structural marks the bytes that matter to skip inside a container, and to
// a jsonTracker below the levels it follows.
var structural = [256]bool{'"': true, '{': true, '}': true, '[': true, ']': true}

// container skips an object or an array starting at s.i.
func (s *scanner) container(out *[]byte) error {
	s.depth++
	defer func() { s.depth-- }()
	if s.depth > maxDepth {
		return errSyntax
	}
	open := s.b[s.i]
	closer := byte(']')
	if open == '{' {
		closer = '}'
	}
	s.i++
	if out != nil {
		*out = append(*out, open)
	}
	c, err := s.peek()
	if err != nil {
		return err
	}
	if c == closer {
		s.i++
		if out != nil {
			*out = append(*out, closer)
		}
		return nil
	}
	for {
		if open == '{' {
			if err := s.key(out); err != nil {
				return err
			}
		}
		if err := s.value(out); err != nil {
			return err
		}
		c, err := s.peek()
		if err != nil {
			return err
		}
		s.i++
		switch c {
		case ',':
			if out != nil {
				*out = append(*out, ',')
			}
		case closer:
			if out != nil {
				*out = append(*out, closer)
			}
			return nil
		default:
			return errSyntax
		}
	}
}

// key reads `"name":` inside an object, appending it to out when not nil.
func (s *scanner) key(out *[]byte) error {
	if _, err := s.peek(); err != nil {
		return err
	}
	start := s.i
	raw, _, err := s.objKey()
	if out != nil && err == nil {
		// raw lies between the quotes that begin at start.
		*out = append(*out, s.b[start:start+len(raw)+2]...)
		*out = append(*out, ':')
	}
	return err
}

// objKey reads `"name"` and the colon after it; s.i ends after the colon.
func (s *scanner) objKey() (raw []byte, esc bool, err error) {
	c, err := s.peek()
	if err != nil {
		return nil, false, err
	}
	if c != '"' {
		return nil, false, errSyntax
	}
	raw, esc, err = s.str()
	if err != nil {
		return raw, esc, err
	}
	c, err = s.peek()
	if err != nil {
		return raw, esc, err
	}
	if c != ':' {
		return raw, esc, errSyntax
	}
	s.i++
	return raw, esc, nil
}

func (s *scanner) literal(word string, out *[]byte) error {
	for k := 0; k < len(word); k++ {
		if s.i+k >= len(s.b) {
			s.i = len(s.b)
			return errEOF
		}
		if s.b[s.i+k] != word[k] {
			return errSyntax
		}
	}
	s.i += len(word)
	if out != nil {
		*out = append(*out, word...)
	}
	return nil
}

// number checks the JSON number grammar:
// -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
func (s *scanner) number(out *[]byte) error {
	start := s.i
	b := s.b
	i := s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		s.i = i
		return errEOF
	}
	switch {
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return errSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) {
			s.i = i
			return errEOF
		}
		if !isDigit(b[i]) {
			return errSyntax
		}
		i = digits(b, i)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) {
			s.i = i
			return errEOF
		}
		if !isDigit(b[i]) {
			return errSyntax
		}
		i = digits(b, i)
	}
	s.i = i
	if out != nil {
		*out = append(*out, b[start:i]...)
	}
	if i >= len(b) {
		// A number can only end the input when the input was cut.
		return errEOF
	}
	return nil
}

func digits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// hex4 decodes four hex digits at b[0:4], or -1 when b is short or not hex.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		v := hexVal(c)
		if v < 0 {
			return -1
		}
		r = r<<4 | rune(v)
	}
	return r
}

// appendUnescaped appends the decoded form of a raw JSON string body. It
// tolerates a partial escape at the end (a truncated body) by dropping it.
// Lone surrogates become U+FFFD, as encoding/json does.
func appendUnescaped(dst, raw []byte) []byte {
	for len(raw) > 0 {
		k := bytes.IndexByte(raw, '\\')
		if k < 0 {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:k]...)
		raw = raw[k:]
		if len(raw) < 2 {
			return dst
		}
		switch c := raw[1]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[2:])
			if r < 0 {
				return dst
			}
			raw = raw[6:]
			if r >= 0xD800 && r < 0xDC00 && len(raw) >= 6 && raw[0] == '\\' && raw[1] == 'u' {
				if lo := hex4(raw[2:]); lo >= 0xDC00 && lo < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
					raw = raw[6:]
				}
			}
			if r >= 0xD800 && r < 0xE000 {
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
		raw = raw[2:]
	}
	return dst
}
