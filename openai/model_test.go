package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/kvgate/kvgate/internal/benchcpu"
)

// bigChatBody returns an OpenAI chat body with n messages (nested objects,
// escaped quotes, a decoy "model" key inside) and the model key last.
func bigChatBody(n int, model string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"messages": [`)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `{"role":"user","content":"say \"model\": \"x\" {[%d]} \\\" done","meta":{"model":"decoy","n":[1,2,{"a":null}]}}`, i)
	}
	b.WriteString("],\n  \"temperature\": 0.7, \"stream\": true,\n  \"model\" : \"" + model + "\"\n}\n")
	return b.Bytes()
}

func TestRewriteModel(t *testing.T) {
	for _, tc := range []struct {
		name, body, model, want string
		ok                      bool
	}{
		{"simple", `{"model":"a","x":1}`, "bb", `{"model":"bb","x":1}`, true},
		{"spacing kept", "{ \"x\" : [1, 2] ,\n \"model\" :\t\"a\" }", "b", "{ \"x\" : [1, 2] ,\n \"model\" :\t\"b\" }", true},
		{"escaped old value", `{"model":"a\"b\\"}`, "c", `{"model":"c"}`, true},
		{"new value escaped", `{"model":"a"}`, "q\"\\\n\x01", `{"model":"q\"\\\n\u0001"}`, true},
		{"escaped key", `{"mod\u0065l":"a"}`, "b", `{"mod\u0065l":"b"}`, true},
		{"duplicates all replaced", `{"model":"a","model":"b"}`, "c", `{"model":"c","model":"c"}`, true},
		{"nested only", `{"x":{"model":"a"}}`, "b", `{"x":{"model":"a"}}`, false},
		{"model key as a value", `{"x":"model","y":["model"]}`, "b", `{"x":"model","y":["model"]}`, false},
		{"not a string", `{"model":3}`, "b", `{"model":3}`, false},
		{"array", `["model","a"]`, "b", `["model","a"]`, false},
		{"truncated", `{"model":"a","x":[1,`, "b", `{"model":"a","x":[1,`, false},
		{"trailing garbage", `{"model":"a"} x`, "b", `{"model":"a"} x`, false},
		{"empty", ``, "b", ``, false},
		{"empty object", `{}`, "b", `{}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := RewriteModel([]byte(tc.body), tc.model)
			if ok != tc.ok || string(got) != tc.want {
				t.Errorf("got %q %v, want %q %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestRewriteModelAfterBigMessages(t *testing.T) {
	body := bigChatBody(2000, "llama-3-8b")
	if len(body) < 100<<10 {
		t.Fatalf("body only %d bytes", len(body))
	}
	orig := bytes.Clone(body)
	if m := Model(body); m != "llama-3-8b" {
		t.Fatalf("Model = %q", m)
	}
	out, ok := RewriteModel(body, "llama-3-70b")
	if !ok {
		t.Fatal("model after a big messages array not found")
	}
	if !bytes.Equal(body, orig) {
		t.Fatal("input modified")
	}
	want := bytes.Replace(orig, []byte(`"model" : "llama-3-8b"`), []byte(`"model" : "llama-3-70b"`), 1)
	if !bytes.Equal(out, want) {
		t.Fatal("output differs from the input in more than the model value")
	}
	if bytes.Count(out, []byte(`"decoy"`)) != 2000 {
		t.Fatal("nested model keys were touched")
	}
	var v struct{ Model string }
	if err := json.Unmarshal(out, &v); err != nil || v.Model != "llama-3-70b" {
		t.Fatalf("decoded model %q, err %v", v.Model, err)
	}
}

func TestModel(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"model":"a"}`, "a"},
		{`{"model":"a\u00e9\"b"}`, "aé\"b"},
		{`{"model":"a\/b"}`, "a/b"},
		{`{"model":"first","model":"last"}`, "last"},
		{`{"model":"a","model":{"model":"x"}}`, "a"}, // the last string value
		{`{"mod\u0065l":"escaped key"}`, "escaped key"},
		{`{"model":"gpt","messages":[{"content":"truncated here`, "gpt"}, // a bounded prefix
		{`{"model":"m","prompt":"cut`, "m"},
		{`{"model":"a"`, "a"},
		{`{"model":"cut`, ""},
		{`{"messages":[{"content":"x"}],"model":"late"`, "late"},
		{`{"messages":[{"role":"user","content":"{\"model\":\"inner\"}"}],"model":"outer"}`, "outer"},
		{`{"messages":[{"model":"nested"}]}`, ""},
		{`{"prompt":"x"}`, ""},
		{`{"model":null}`, ""},
		{`{"model":7}`, ""},
		{`not json`, ""},
		{``, ""},
	} {
		if got := Model([]byte(tc.body)); got != tc.want {
			t.Errorf("Model(%s) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// Model and RewriteModel look only at the top level: a deeply nested value
// before the model, deeper than Extract accepts, does not hide it.
func TestModelAfterDeepNesting(t *testing.T) {
	deep := strings.Repeat("[", 4*maxDepth) + strings.Repeat("]", 4*maxDepth)
	body := []byte(`{"x":` + deep + `,"model":"a"}`)
	if !json.Valid(body) {
		t.Fatal("test body is not JSON")
	}
	if m := Model(body); m != "a" {
		t.Fatalf("Model = %q, want a", m)
	}
	out, ok := RewriteModel(body, "b")
	if want := `{"x":` + deep + `,"model":"b"}`; !ok || string(out) != want {
		t.Fatalf("RewriteModel = %v, %.40q...", ok, out)
	}
}

func TestModelAllocs(t *testing.T) {
	body := bigChatBody(50, "llama-3-8b")
	if n := testing.AllocsPerRun(20, func() { _ = Model(body) }); n != 1 {
		t.Errorf("Model allocates %.1f times, want 1 (the string)", n)
	}
	if n := testing.AllocsPerRun(20, func() { _, _ = RewriteModel(body, "llama-3-70b") }); n != 1 {
		t.Errorf("RewriteModel allocates %.1f times, want 1 (the body)", n)
	}
}

// FuzzRewriteModel checks RewriteModel against encoding/json: on a
// valid JSON object it succeeds exactly when some top-level "model" value is a
// string, each such value decodes to the new model afterwards, and with the
// model string values cut out, input and output are byte-identical.
func FuzzRewriteModel(f *testing.F) {
	f.Add([]byte(`{"model":"a","messages":[{"role":"user","content":"hi"}]}`), "b")
	f.Add([]byte(`{"messages":[{"content":"\"model\":\"x\""}],"model":"m"}`), "q\"uote")
	f.Add(bigChatBody(3, "m"), "new")
	f.Add([]byte(`{"model":1}`), "x")
	f.Add([]byte(`{"mod\u0065l":"a","model":null}`), "\x00\xff")
	f.Fuzz(func(t *testing.T, body []byte, model string) {
		orig := bytes.Clone(body)
		out, ok := RewriteModel(body, model)
		if !bytes.Equal(body, orig) {
			t.Fatal("input modified")
		}
		_ = Model(body) // must not panic on any input
		if !ok && !bytes.Equal(out, body) {
			t.Fatal("not ok but the output differs from the input")
		}
		before, n, valid := cutModels(t, body)
		if !valid {
			return // invalid JSON: best effort, no claim beyond not panicking
		}
		if ok != (n > 0) {
			t.Fatalf("ok = %v with %d top-level string models in %q", ok, n, body)
		}
		if !ok {
			return
		}
		after, n2, valid2 := cutModels(t, out)
		if !valid2 || n2 != n {
			t.Fatalf("output invalid or model count changed (%d -> %d): %q", n, n2, out)
		}
		if !bytes.Equal(before, after) {
			t.Fatalf("bytes outside the model values changed:\n%q\n%q", before, after)
		}
		var want string // what encoding/json makes of the model, invalid UTF-8 included
		if enc, err := json.Marshal(model); err != nil || json.Unmarshal(enc, &want) != nil {
			t.Fatal("encoding/json cannot round-trip the model")
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.Token()
		for dec.More() {
			k, _ := dec.Token()
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				t.Fatal(err)
			}
			var v string
			if k == "model" && raw[0] == '"' && (json.Unmarshal(raw, &v) != nil || v != want) {
				t.Fatalf("model decodes to %q, want %q", v, want)
			}
		}
	})
}

// cutModels uses encoding/json to remove every top-level string "model"
// value from a JSON object, and counts them. valid is false when b is not a
// JSON object.
func cutModels(t *testing.T, b []byte) (rest []byte, n int, valid bool) {
	if !json.Valid(b) {
		return nil, 0, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, 0, false
	}
	last := 0
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatal(err)
		}
		if k == "model" && raw[0] == '"' {
			end := int(dec.InputOffset())
			rest = append(rest, b[last:end-len(raw)]...)
			last = end
			n++
		}
	}
	return append(rest, b[last:]...), n, true
}

func BenchmarkRewriteModel(b *testing.B) {
	body := bigChatBody(500, "llama-3-8b")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	clk := benchcpu.Start()
	for b.Loop() {
		if _, ok := RewriteModel(body, "llama-3-70b"); !ok {
			b.Fatal("not found")
		}
	}
	clk.Stop(b)
}

// BenchmarkModel reads the model behind a long messages array: the bounded
// body read a model-match route costs. "decoys" is bigChatBody (escapes,
// nested "model" keys), "chat" a realistic chat body.
func BenchmarkModel(b *testing.B) {
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"decoys-57KiB", bigChatBody(500, "llama-3-8b")},
		{"chat-8KiB", []byte(chatBody(8 << 10))},
		{"chat-64KiB", []byte(chatBody(64 << 10))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.body)))
			b.ReportAllocs()
			clk := benchcpu.Start()
			for b.Loop() {
				if Model(tc.body) == "" {
					b.Fatal("no model")
				}
			}
			clk.Stop(b)
		})
	}
}
