package openai

import (
	"errors"
	"strings"
	"testing"
)

func TestExtract(t *testing.T) {
	tests := []struct {
		name      string
		path      string
		body      string
		model     string
		salt      string
		text      string
		truncated bool
		err       error
	}{
		{
			name:  "chat string content",
			path:  "/v1/chat/completions",
			body:  `{"model":"llama","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]}`,
			model: "llama",
			text:  "system: Be brief.\nuser: Hi\n",
		},
		{
			name:  "chat multi-part content",
			path:  "/v1/chat/completions",
			body:  `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"http://x/a.png"}},{"type":"text","text":"here"}]}]}`,
			model: "m",
			text:  "user: look\n{\"type\":\"image_url\",\"image_url\":{\"url\":\"http://x/a.png\"}}\nhere\n",
		},
		{
			name:  "chat model after a large messages array",
			path:  "/v1/chat/completions",
			body:  `{"messages":[{"role":"user","content":"` + strings.Repeat("abc ", 5000) + `"}],"stream":true,"model":"late-model"}`,
			model: "late-model",
			text:  "user: " + strings.Repeat("abc ", 5000) + "\n",
		},
		{
			name:  "chat cache_salt and LoRA adapter",
			path:  "/v1/chat/completions",
			body:  `{"model":"sql-lora","cache_salt":"tenant-7","messages":[{"role":"user","content":"q"}]}`,
			model: "sql-lora",
			salt:  "tenant-7",
			text:  "user: q\n",
		},
		{
			name:  "chat tools come first whatever their position; field order inside a message does not matter",
			path:  "/v1/chat/completions",
			body:  `{"messages":[{"content":"weather?","role":"user"}],"tools":[ {"type": "function", "function": {"name": "get_weather"}} ],"model":"m"}`,
			model: "m",
			text:  "tools: [{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}]\nuser: weather?\n",
		},
		{
			name:  "chat assistant tool call and tool result",
			path:  "/v1/chat/completions",
			body:  `{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"42"}]}`,
			model: "m",
			text:  "assistant: \n{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}\ntool: 42\nc1\n",
		},
		{
			name:  "chat escapes are decoded",
			path:  "/v1/chat/completions",
			body:  `{"model":"m\u00e9","messages":[{"role":"user","content":"a\"b\\c\nd \u263a \ud83d\ude00 \ud800"}]}`,
			model: "mé",
			text:  "user: a\"b\\c\nd ☺ 😀 \uFFFD\n",
		},
		{
			name:  "chat top-level system",
			path:  "/v1/chat/completions",
			body:  `{"model":"m","messages":[{"role":"user","content":"x"}],"system":"rules"}`,
			model: "m",
			text:  "system: rules\nuser: x\n",
		},
		{
			name:  "completions string prompt",
			path:  "/v1/completions",
			body:  `{"model":"m","prompt":"Once upon a time","max_tokens":5}`,
			model: "m",
			text:  "Once upon a time\n",
		},
		{
			name:  "completions array prompt",
			path:  "/v1/completions",
			body:  `{"model":"m","prompt":["first","second"]}`,
			model: "m",
			text:  "first\nsecond\n",
		},
		{
			name:  "completions token prompt",
			path:  "/v1/completions",
			body:  `{"model":"m","prompt":[1,2,30]}`,
			model: "m",
			text:  "1\n2\n30\n",
		},
		{
			name:  "responses string input with instructions",
			path:  "/v1/responses",
			body:  `{"model":"m","input":"hello","instructions":"be kind"}`,
			model: "m",
			text:  "system: be kind\nhello\n",
		},
		{
			name:  "responses item list",
			path:  "/v1/responses",
			body:  `{"model":"m","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]},{"type":"function_call","name":"f","arguments":"{}","call_id":"c"},{"type":"function_call_output","call_id":"c","output":"ok"}]}`,
			model: "m",
			text:  "user: hi\nfunction_call: f\n{}\nc\nfunction_call_output: ok\nc\n",
		},
		{
			name:  "embeddings string",
			path:  "/v1/embeddings",
			body:  `{"input":"embed me","model":"e5"}`,
			model: "e5",
			text:  "embed me\n",
		},
		{
			name:  "embeddings array",
			path:  "/v1/embeddings?x=1",
			body:  `{"input":["a","b"],"model":"e5"}`,
			model: "e5",
			text:  "a\nb\n",
		},
		{
			name:  "path prefix from a rewrite",
			path:  "/openai/v1/chat/completions",
			body:  `{"model":"m","messages":[]}`,
			model: "m",
			text:  "",
		},
		{
			name:      "truncated inside content",
			path:      "/v1/chat/completions",
			body:      `{"model":"m","messages":[{"role":"user","content":"partial te`,
			model:     "m",
			text:      "user: partial te\n",
			truncated: true,
		},
		{
			name:      "truncated inside an escape",
			path:      "/v1/chat/completions",
			body:      `{"model":"m","messages":[{"role":"user","content":"ab\u26`,
			model:     "m",
			text:      "user: ab\n",
			truncated: true,
		},
		{
			name:      "truncated before the model",
			path:      "/v1/chat/completions",
			body:      `{"messages":[{"role":"user","content":"x"}],"mod`,
			text:      "user: x\n",
			truncated: true,
		},
		{
			name:      "truncated inside the model",
			path:      "/v1/chat/completions",
			body:      `{"messages":[],"model":"lla`,
			truncated: true,
		},
		{
			name:      "just an opening brace",
			path:      "/v1/completions",
			body:      `{`,
			truncated: true,
		},
		{name: "not JSON", path: "/v1/chat/completions", body: `model=llama`, err: ErrInvalidJSON},
		{name: "empty body", path: "/v1/chat/completions", body: ``, err: ErrInvalidJSON},
		{name: "array body", path: "/v1/chat/completions", body: `[1]`, err: ErrInvalidJSON},
		{name: "syntax error after the model", path: "/v1/chat/completions", body: `{"model":"m","messages":[}`, err: ErrInvalidJSON},
		{name: "trailing garbage", path: "/v1/completions", body: `{"model":"m"} x`, err: ErrInvalidJSON},
		{name: "bad number", path: "/v1/completions", body: `{"model":"m","n":01}`, err: ErrInvalidJSON},
		{name: "bad escape", path: "/v1/completions", body: `{"prompt":"\q"}`, err: ErrInvalidJSON},
		{name: "unsupported path", path: "/v1/models", body: `{}`, err: ErrUnsupportedPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Start from a dirty Prompt: Extract must overwrite every field.
			p := Prompt{Model: "stale", CacheSalt: "stale", Text: []byte("stale"), Truncated: !tt.truncated}
			err := Extract(tt.path, []byte(tt.body), &p)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				if p.Model != "" || p.CacheSalt != "" || len(p.Text) != 0 {
					t.Errorf("after error got %+v, want zero fields", p)
				}
				return
			}
			if p.Model != tt.model || p.CacheSalt != tt.salt {
				t.Errorf("model, salt = %q, %q; want %q, %q", p.Model, p.CacheSalt, tt.model, tt.salt)
			}
			if string(p.Text) != tt.text {
				t.Errorf("text = %q\nwant   %q", p.Text, tt.text)
			}
			if p.Truncated != tt.truncated {
				t.Errorf("truncated = %v, want %v", p.Truncated, tt.truncated)
			}
		})
	}
}

// A conversation that grows by one turn must extend the previous text, so
// the previous turn's blocks stay a prefix of the new one's.
func TestExtractConversationPrefix(t *testing.T) {
	turn1 := `{"model":"m","tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"system","content":"S"},{"role":"user","content":"U1"}]}`
	turn2 := `{"messages":[{"role":"system","content":"S"},{"role":"user","content":"U1"},{"role":"assistant","content":"A1"},{"role":"user","content":"U2"}],"tools":[{"type":"function","function":{"name":"f"}}],"model":"m"}`
	var p1, p2 Prompt
	if err := Extract("/v1/chat/completions", []byte(turn1), &p1); err != nil {
		t.Fatal(err)
	}
	if err := Extract("/v1/chat/completions", []byte(turn2), &p2); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(p2.Text), string(p1.Text)) {
		t.Fatalf("turn 2 text %q does not extend turn 1 text %q", p2.Text, p1.Text)
	}
}

// Deep nesting is rejected, not recursed into without bound.
func TestExtractDepthLimit(t *testing.T) {
	body := `{"prompt":` + strings.Repeat("[", maxDepth+10) + strings.Repeat("]", maxDepth+10) + `}`
	var p Prompt
	if err := Extract("/v1/completions", []byte(body), &p); !errors.Is(err, ErrInvalidJSON) {
		t.Fatalf("err = %v, want ErrInvalidJSON", err)
	}
	ok := `{"prompt":` + strings.Repeat("[", 50) + strings.Repeat("]", 50) + `}`
	if err := Extract("/v1/completions", []byte(ok), &p); err != nil {
		t.Fatalf("depth 50: %v", err)
	}
}

func TestExtractReusesBuffers(t *testing.T) {
	body := []byte(chatBody(8 << 10))
	p := Prompt{Text: make([]byte, 0, 16<<10)}
	if err := Extract("/v1/chat/completions", body, &p); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if err := Extract("/v1/chat/completions", body, &p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Extract allocates %.1f times per call with warm buffers, want 0", allocs)
	}
}
