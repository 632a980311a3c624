package router

import (
	"bytes"
	"encoding/json"

	"github.com/kvgate/kvgate/internal/jsonstr"
)

// RewriteModelField returns a copy of an OpenAI-shaped JSON body whose
// top-level "model" string value is replaced by newModel (JSON-escaped), with
// every other byte identical. It replaces every top-level "model" key whose
// value is a string (duplicates included, so parsers that keep the first or
// the last agree). ok is false, and body is returned as is, when body is not
// a JSON object or has no top-level "model" string. The caller fixes
// Content-Length. body is not modified.
func RewriteModelField(body []byte, newModel string) ([]byte, bool) {
	var buf [4][2]int
	spans, complete := modelSpans(body, buf[:0])
	if !complete || len(spans) == 0 {
		return body, false
	}
	enc := jsonstr.Append(nil, newModel)
	size := len(body)
	for _, s := range spans {
		size += len(enc) - (s[1] - s[0])
	}
	out := make([]byte, 0, size)
	last := 0
	for _, s := range spans {
		out = append(out, body[last:s[0]]...)
		out = append(out, enc...)
		last = s[1]
	}
	return append(out, body[last:]...), true
}

// ModelField returns the top-level "model" string of a JSON object body, or
// "" when there is none. body may be a prefix of the whole body (a bounded
// read): a model that appears within it is found. When the key repeats, the
// last one seen wins (as encoding/json and Python's json do).
func ModelField(body []byte) string {
	var buf [4][2]int
	spans, _ := modelSpans(body, buf[:0])
	if len(spans) == 0 {
		return ""
	}
	s := spans[len(spans)-1]
	raw := body[s[0]:s[1]]
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var v string
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	return v
}

// modelSpans appends the [start,end) byte spans (quotes included) of every
// top-level "model" string value. complete is true when the whole body is
// one JSON object (nested values are skipped, not validated) followed only
// by whitespace.
func modelSpans(b []byte, spans [][2]int) (_ [][2]int, complete bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return spans, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return spans, skipWS(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return spans, false
		}
		ke, kesc, ok := scanString(b, i)
		if !ok {
			return spans, false
		}
		isModel := keyIsModel(b[i:ke], kesc)
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return spans, false
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return spans, false
		}
		vs := i
		if b[i] == '"' {
			i, _, ok = scanString(b, i)
			if ok && isModel {
				spans = append(spans, [2]int{vs, i})
			}
		} else {
			i, ok = skipValue(b, i)
		}
		if !ok {
			return spans, false
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return spans, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return spans, skipWS(b, i+1) == len(b)
		default:
			return spans, false
		}
	}
}

func keyIsModel(quoted []byte, escaped bool) bool {
	if !escaped {
		return string(quoted) == `"model"`
	}
	var k string
	return json.Unmarshal(quoted, &k) == nil && k == "model"
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString scans the JSON string starting at b[i] == '"' and returns the
// index just past its closing quote and whether it holds a backslash escape.
func scanString(b []byte, i int) (end int, escaped bool, ok bool) {
	start := i
	for i++; ; {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return len(b), escaped, false
		}
		q := i + j
		if !escaped && bytes.IndexByte(b[i:q], '\\') >= 0 {
			escaped = true
		}
		// The quote closes the string unless an odd run of backslashes precedes it.
		n := 0
		for k := q - 1; k > start && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, escaped, true
		}
		i = q + 1
	}
}

// skipValue skips a non-string JSON value starting at b[i]: an object or
// array (by bracket depth, strings respected) or a scalar.
func skipValue(b []byte, i int) (int, bool) {
	switch b[i] {
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			case '"':
				end, _, ok := scanString(b, i)
				if !ok {
					return len(b), false
				}
				i = end
				continue
			}
			i++
		}
		return len(b), false
	case '}', ']', ',', ':':
		return i, false
	}
	start := i
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i, i > start
		case '"', '{', '[', ':':
			return i, false
		}
		i++
	}
	return i, false
}
