package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

var fuzzPaths = [...]string{"/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/embeddings"}

// FuzzExtract checks the scanner against encoding/json: every JSON object it
// accepts, Extract accepts untruncated with the same model; every prefix of
// one is a truncation, never an error; results are deterministic and agree
// with Model. The corpus is under testdata/fuzz/FuzzExtract.
func FuzzExtract(f *testing.F) {
	f.Add(byte(0), []byte(chatBody(1<<10)))
	f.Add(byte(2), []byte(`{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"hi"}]}]}`))
	f.Fuzz(func(t *testing.T, kind byte, body []byte) {
		path := fuzzPaths[int(kind)%len(fuzzPaths)]
		var p Prompt
		err := Extract(path, body, &p)
		if err != nil && !errors.Is(err, ErrInvalidJSON) {
			t.Fatalf("unexpected error %v", err)
		}
		valid := isJSONObject(body) && nesting(body) <= maxDepth
		if valid && (err != nil || p.Truncated) {
			t.Fatalf("valid JSON object: err %v, truncated %v", err, p.Truncated)
		}
		if err != nil {
			return
		}

		// Deterministic, whatever the Prompt held before.
		q := Prompt{Model: "x", CacheSalt: "y", Text: []byte("z"), Truncated: true}
		if err := Extract(path, body, &q); err != nil || q.Model != p.Model || q.CacheSalt != p.CacheSalt ||
			q.Truncated != p.Truncated || !bytes.Equal(q.Text, p.Text) {
			t.Fatalf("second Extract differs: %+v vs %+v (%v)", q, p, err)
		}
		// Model agrees with Extract: Extract keeps the last "model" member
		// (any type), Model the last string one; both decode it alike.
		if m := Model(body); !p.Truncated && p.Model != "" && m != p.Model {
			t.Fatalf("Model = %q; Extract model %q", m, p.Model)
		}
		if !valid {
			return
		}
		if want, ok := jsonModel(body); ok && utf8.ValidString(p.Model) && want != p.Model {
			t.Fatalf("model %q, encoding/json says %q", p.Model, want)
		}
		for _, k := range []int{len(body) / 3, len(body) / 2, len(body) - 1} {
			cut := body[:k]
			if len(bytes.TrimSpace(cut)) == 0 {
				continue
			}
			var c Prompt
			if err := Extract(path, cut, &c); err != nil {
				t.Fatalf("prefix of %d bytes: %v", k, err)
			}
		}
	})
}

func isJSONObject(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(b)
}

// nesting is the deepest bracket nesting outside strings.
func nesting(b []byte) int {
	depth, max, inStr := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case !inStr && (c == '{' || c == '['):
			depth++
			max = maxInt(max, depth)
		case !inStr && (c == '}' || c == ']'):
			depth--
		}
	}
	return max
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func jsonModel(body []byte) (string, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return "", false
	}
	var s string
	if json.Unmarshal(m["model"], &s) != nil {
		return "", false
	}
	return s, true
}
