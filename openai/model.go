package openai

import (
	"bytes"

	"github.com/kvgate/kvgate/internal/jsonstr"
)

// Model returns the top-level "model" string of a JSON object body, or ""
// when there is none. body may be a prefix of the whole body (a bounded
// read): a model that appears within it is found. When the key repeats, the
// last string value wins (as encoding/json and Python's json do). Reading
// stops where body stops being JSON; a model found before that point is
// still returned. Escapes are decoded as Extract decodes them. Model
// allocates the returned string and nothing else.
func Model(body []byte) string {
	var buf [4][2]int
	s := scanner{b: body}
	spans, _ := s.models(buf[:0])
	if len(spans) == 0 {
		return ""
	}
	sp := spans[len(spans)-1]
	raw := body[sp[0]+1 : sp[1]-1] // between the quotes
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	var dec [128]byte
	return string(appendUnescaped(dec[:0], raw))
}

// RewriteModel returns a copy of an OpenAI-shaped JSON body whose top-level
// "model" string value is replaced by newModel (JSON-escaped), with every
// other byte identical. It replaces every top-level "model" key whose value
// is a string (duplicates included, so parsers that keep the first or the
// last agree). ok is false, and body is returned as is, when body is not a
// JSON object or has no top-level "model" string. The caller fixes
// Content-Length. body is not modified. It allocates the returned body.
func RewriteModel(body []byte, newModel string) (_ []byte, ok bool) {
	var buf [4][2]int
	s := scanner{b: body}
	spans, err := s.models(buf[:0])
	if err != nil || len(spans) == 0 {
		return body, false
	}
	var encBuf [64]byte
	enc := jsonstr.Append(encBuf[:0], newModel)
	size := len(body)
	for _, sp := range spans {
		size += len(enc) - (sp[1] - sp[0])
	}
	out := make([]byte, 0, size)
	last := 0
	for _, sp := range spans {
		out = append(out, body[last:sp[0]]...)
		out = append(out, enc...)
		last = sp[1]
	}
	return append(out, body[last:]...), true
}

// models reads the top-level object at s.i and appends to spans the
// [start,end) span, quotes included, of every member named "model" whose
// value is a string. Member values are passed over with skip, so nesting
// depth is not bounded and the inside of objects and arrays is not checked.
// It returns nil when the body is one object followed only by whitespace,
// errEOF when it ends inside the object, errSyntax otherwise; the spans
// found before the end or the error are returned either way.
func (s *scanner) models(spans [][2]int) ([][2]int, error) {
	err := s.object(func(key []byte, esc bool, val []byte) {
		if val[0] == '"' && lookupKey(key, esc) == fModel {
			spans = append(spans, [2]int{s.i - len(val), s.i})
		}
	})
	if err == nil {
		err = s.end()
	}
	return spans, err
}
