package router

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
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

func TestRewriteModelField(t *testing.T) {
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
			got, ok := RewriteModelField([]byte(tc.body), tc.model)
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
	if m := ModelField(body); m != "llama-3-8b" {
		t.Fatalf("ModelField = %q", m)
	}
	out, ok := RewriteModelField(body, "llama-3-70b")
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

func TestModelField(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"model":"a"}`, "a"},
		{`{"model":"a\u00e9\"b"}`, "aé\"b"},
		{`{"model":"first","model":"last"}`, "last"},
		{`{"model":"gpt","messages":[{"content":"truncated here`, "gpt"}, // a bounded prefix
		{`{"messages":[{"content":"x"}],"model":"late"`, "late"},
		{`{"messages":[{"model":"nested"}]}`, ""},
		{`{"model":null}`, ""},
		{`not json`, ""},
	} {
		if got := ModelField([]byte(tc.body)); got != tc.want {
			t.Errorf("ModelField(%s) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// FuzzRewriteModelField checks RewriteModelField against encoding/json: on a
// valid JSON object it succeeds exactly when some top-level "model" value is a
// string, each such value decodes to the new model afterwards, and with the
// model string values cut out, input and output are byte-identical.
func FuzzRewriteModelField(f *testing.F) {
	f.Add([]byte(`{"model":"a","messages":[{"role":"user","content":"hi"}]}`), "b")
	f.Add([]byte(`{"messages":[{"content":"\"model\":\"x\""}],"model":"m"}`), "q\"uote")
	f.Add(bigChatBody(3, "m"), "new")
	f.Add([]byte(`{"model":1}`), "x")
	f.Add([]byte(`{"mod\u0065l":"a","model":null}`), "\x00\xff")
	f.Fuzz(func(t *testing.T, body []byte, model string) {
		orig := bytes.Clone(body)
		out, ok := RewriteModelField(body, model)
		if !bytes.Equal(body, orig) {
			t.Fatal("input modified")
		}
		_ = ModelField(body) // must not panic on any input
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

func BenchmarkRewriteModelField(b *testing.B) {
	body := bigChatBody(500, "llama-3-8b")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := RewriteModelField(body, "llama-3-70b"); !ok {
			b.Fatal("not found")
		}
	}
}
