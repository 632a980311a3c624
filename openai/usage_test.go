package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// scanChunks feeds body to a fresh scanner in chunks of n bytes (0: whole).
func scanChunks(mode UsageMode, body []byte, n int) (Usage, bool) {
	var s UsageScanner
	s.Reset(mode)
	if n <= 0 {
		n = len(body) + 1
	}
	for len(body) > 0 {
		k := min(n, len(body))
		s.Scan(body[:k])
		body = body[k:]
	}
	return s.Usage()
}

const chatJSON = `{
  "id": "chatcmpl-1",
  "object": "chat.completion",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi \"usage\": {\"prompt_tokens\": 99}"}, "usage": {"prompt_tokens": 98}}],
  "usage": {
    "prompt_tokens": 12,
    "completion_tokens": 7,
    "total_tokens": 19,
    "prompt_tokens_details": {"cached_tokens": 8, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0}
  }
}`

func sse(events ...string) string {
	var b strings.Builder
	for _, e := range events {
		b.WriteString("data: ")
		b.WriteString(e)
		b.WriteString("\n\n")
	}
	return b.String()
}

func TestUsageScanner(t *testing.T) {
	chunk := `{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"tok"}}],"usage":null}`
	last := `{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":30,"completion_tokens":5,"total_tokens":35,"prompt_tokens_details":{"cached_tokens":16}}}`
	embed := `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[` +
		strings.Repeat("0.0123,-0.5,", 2000) + `1]}],"model":"e","usage":{"prompt_tokens":9,"total_tokens":9}}`
	big := `{"usage":{"prompt_tokens":1,"x":"` + strings.Repeat("a", maxUsageBytes) + `"}}`
	cases := []struct {
		name  string
		mode  UsageMode
		body  string
		want  Usage
		found bool
	}{
		{"json chat, usage in strings and nested objects ignored", UsageJSON, chatJSON, Usage{12, 7, 19, 8}, true},
		{"json embeddings after a large array", UsageJSON, embed, Usage{Prompt: 9, Total: 9}, true},
		{"json responses api", UsageJSON,
			`{"id":"resp_1","object":"response","output":[{"type":"message","content":[{"type":"output_text","text":"x"}]}],` +
				`"usage":{"input_tokens":40,"input_tokens_details":{"cached_tokens":32},"output_tokens":3,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":43}}`,
			Usage{40, 3, 43, 32}, true},
		{"json usage null", UsageJSON, `{"usage":null,"choices":[]}`, Usage{}, false},
		{"json no usage", UsageJSON, `{"choices":[{"text":"usage"}]}`, Usage{}, false},
		{"json top level array", UsageJSON, `[{"usage":{"prompt_tokens":1}}]`, Usage{}, false},
		{"json truncated usage", UsageJSON, `{"usage":{"prompt_tokens":5,"completion_tokens":`, Usage{}, false},
		{"json oversized usage ignored", UsageJSON, big, Usage{}, false},
		{"json escaped key is not usage", UsageJSON, `{"us\u0061ge":{"prompt_tokens":5}}`, Usage{}, false},
		{"json key ending in usage", UsageJSON, `{"x\"usage":{"prompt_tokens":5}}`, Usage{}, false},
		{"json fractional and negative numbers", UsageJSON, `{"usage":{"prompt_tokens":5.0,"completion_tokens":-3,"total_tokens":2e1}}`, Usage{Prompt: 5, Total: 2}, true},
		{"sse include_usage last chunk", UsageSSE, sse(chunk, chunk, last, "[DONE]"), Usage{30, 5, 35, 16}, true},
		{"sse crlf and comments", UsageSSE,
			": keep-alive\r\n\r\nevent: message\r\nid: 3\r\ndata:" + last + "\r\n\r\ndata: [DONE]\r\n\r\n", Usage{30, 5, 35, 16}, true},
		{"sse bare cr", UsageSSE, "data: " + chunk + "\r\rdata: " + last + "\r\r", Usage{30, 5, 35, 16}, true},
		{"sse continuous usage, last wins", UsageSSE,
			sse(`{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`,
				`{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`), Usage{3, 2, 5, 0}, true},
		{"sse no usage", UsageSSE, sse(chunk, chunk, "[DONE]"), Usage{}, false},
		{"sse usage in a non-data field", UsageSSE, "event: " + last + "\n\n" + "dat: " + last + "\n\n", Usage{}, false},
		{"sse stream cut inside the usage chunk", UsageSSE, sse(chunk) + "data: " + last[:len(last)-20], Usage{}, false},
		{"sse data split over two lines", UsageSSE,
			"data: {\"choices\":[],\ndata: \"usage\":{\"prompt_tokens\":4,\"total_tokens\":4}}\n\n", Usage{Prompt: 4, Total: 4}, true},
		{"sse responses api completed event", UsageSSE,
			"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"usage\"}\n\n" +
				"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\",\"output\":[{\"usage\":{\"input_tokens\":1}}]," +
				"\"usage\":{\"input_tokens\":21,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":6,\"total_tokens\":27}}}\n\n",
			Usage{21, 6, 27, 0}, true},
		{"sse usage under a nested response key ignored", UsageSSE,
			sse(`{"x":{"response":{"usage":{"input_tokens":1}}}}`), Usage{}, false},
		{"off", UsageOff, chatJSON, Usage{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{0, 1, 2, 3, 7, 64} {
				got, found := scanChunks(tc.mode, []byte(tc.body), n)
				if got != tc.want || found != tc.found {
					t.Fatalf("chunks of %d: got %+v, %v; want %+v, %v", n, got, found, tc.want, tc.found)
				}
			}
		})
	}
}

// TestUsageScannerReset checks that a reused scanner forgets the last body.
func TestUsageScannerReset(t *testing.T) {
	var s UsageScanner
	s.Reset(UsageJSON)
	s.Scan([]byte(chatJSON))
	if _, ok := s.Usage(); !ok {
		t.Fatal("no usage in chatJSON")
	}
	s.Reset(UsageSSE)
	s.Scan([]byte(`data: {"usage":{"prompt_tokens":`))
	s.Reset(UsageJSON)
	s.Scan([]byte(`{"a":1}`))
	if u, ok := s.Usage(); ok || u != (Usage{}) {
		t.Fatalf("after Reset: %+v, %v", u, ok)
	}
}

func TestUsageScannerAllocs(t *testing.T) {
	body := []byte(sse(`{"choices":[{"delta":{"content":"x"}}]}`, `{"choices":[],"usage":{"prompt_tokens":3,"total_tokens":3}}`))
	var s UsageScanner
	if n := testing.AllocsPerRun(20, func() {
		s.Reset(UsageSSE)
		s.Scan(body)
	}); n != 0 {
		t.Fatalf("%v allocations per body, want 0", n)
	}
}

// refUsage finds the usage object with encoding/json, following the rules
// the scanner documents: the last object-valued "usage" key of the
// top-level object or of its object-valued "response" key.
func refUsage(body []byte) (Usage, bool) {
	var found []byte
	var walk func(raw []byte, depth int)
	walk = func(raw []byte, depth int) {
		d := json.NewDecoder(bytes.NewReader(raw))
		if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
			return
		}
		for d.More() {
			k, _ := d.Token()
			var v json.RawMessage
			if d.Decode(&v) != nil {
				return
			}
			v = bytes.TrimSpace(v)
			if len(v) == 0 || v[0] != '{' {
				continue
			}
			switch {
			case k == "usage":
				var c bytes.Buffer
				_ = json.Compact(&c, v)
				if c.Len() <= maxUsageBytes { // a larger one is ignored, not a reset
					found = c.Bytes()
				}
			case k == "response" && depth == 1:
				walk(v, 2)
			}
		}
	}
	walk(body, 1)
	if len(found) == 0 {
		return Usage{}, false
	}
	var u Usage
	members(found, func(k string, v json.RawMessage) {
		switch k {
		case "prompt_tokens", "input_tokens":
			u.Prompt = atoi(v)
		case "completion_tokens", "output_tokens":
			u.Completion = atoi(v)
		case "total_tokens":
			u.Total = atoi(v)
		case "prompt_tokens_details", "input_tokens_details":
			members(v, func(k string, v json.RawMessage) {
				if k == "cached_tokens" {
					u.Cached = atoi(v)
				}
			})
		}
	})
	return u, true
}

// members calls fn with each member of the JSON object obj, in order, as
// encoding/json decodes it; nothing when obj is not an object.
func members(obj []byte, fn func(k string, v json.RawMessage)) {
	d := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return
	}
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return
		}
		var v json.RawMessage
		if d.Decode(&v) != nil {
			return
		}
		fn(k.(string), v)
	}
}

// FuzzUsageScanner checks that the result does not depend on how the body
// is split, that it agrees with encoding/json on valid JSON, and that SSE
// framing finds the same usage as the JSON event alone. The corpus is
// under testdata/fuzz/FuzzUsageScanner.
func FuzzUsageScanner(f *testing.F) {
	f.Add([]byte(chatJSON), uint8(3))
	f.Add([]byte(`{"response":{"usage":{"input_tokens":2,"output_tokens":1}}}`), uint8(1))
	f.Fuzz(func(t *testing.T, body []byte, split uint8) {
		for _, mode := range []UsageMode{UsageJSON, UsageSSE} {
			whole, wf := scanChunks(mode, body, 0)
			cut, cf := scanChunks(mode, body, int(split)+1)
			if whole != cut || wf != cf {
				t.Fatalf("mode %d: whole %+v %v, chunks of %d %+v %v", mode, whole, wf, int(split)+1, cut, cf)
			}
		}
		if !json.Valid(body) || bytes.Contains(body, []byte(`\u`)) || bytes.ContainsAny(body, "\r\n") {
			return // escaped keys are not keys the scanner reads; raw newlines break SSE framing
		}
		want, wf := refUsage(body)
		got, gf := scanChunks(UsageJSON, body, 0)
		if got != want || gf != wf {
			t.Fatalf("json: got %+v %v; encoding/json finds %+v %v", got, gf, want, wf)
		}
		ev, ef := scanChunks(UsageSSE, []byte("data: "+string(body)+"\n\n"), int(split)+1)
		if ev != want || ef != wf {
			t.Fatalf("sse: got %+v %v; want %+v %v", ev, ef, want, wf)
		}
	})
}

// BenchmarkUsageScanner reports the cost of scanning 1 MiB bodies: SSE
// chunks of a long stream, a pretty-printed JSON completion, and an
// embeddings response (numbers, no strings).
func BenchmarkUsageScanner(b *testing.B) {
	var sseBody strings.Builder
	for sseBody.Len() < 1<<20 {
		fmt.Fprintf(&sseBody, "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" token%d\"},\"finish_reason\":null}],\"usage\":null}\n\n", sseBody.Len())
	}
	sseBody.WriteString(sse(`{"choices":[],"usage":{"prompt_tokens":30,"completion_tokens":5,"total_tokens":35}}`, "[DONE]"))
	text := strings.Repeat(`Lorem ipsum dolor sit amet, \"quoted\" words and more words. `, (1<<20)/64)
	jsonBody := `{"id":"x","choices":[{"message":{"role":"assistant","content":"` + text + `"}}],` + "\n" + `"usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}`
	embed := `{"data":[{"embedding":[` + strings.Repeat("-0.012345678,", (1<<20)/13) + `0]}],"usage":{"prompt_tokens":9,"total_tokens":9}}`
	for _, tc := range []struct {
		name string
		mode UsageMode
		body string
	}{{"sse-1MiB", UsageSSE, sseBody.String()}, {"json-text-1MiB", UsageJSON, jsonBody}, {"json-embedding-1MiB", UsageJSON, embed}} {
		b.Run(tc.name, func(b *testing.B) {
			body := []byte(tc.body)
			var s UsageScanner
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				s.Reset(tc.mode)
				for p := body; len(p) > 0; { // 16 KiB reads, like the proxy's copy buffer
					k := min(16<<10, len(p))
					s.Scan(p[:k])
					p = p[k:]
				}
				if _, ok := s.Usage(); !ok {
					b.Fatal("no usage found")
				}
			}
		})
	}
}

func TestReportsUsage(t *testing.T) {
	for path, want := range map[string]bool{
		"/v1/chat/completions":        true,
		"/openai/v1/chat/completions": true,
		"/v1/completions":             true,
		"/v1/responses":               true,
		"/v1/embeddings":              true,
		"/v1/models":                  false,
		"/chat/completions":           false, // usage paths keep their /v1
		"/v1/chat/completions/":       false,
	} {
		if got := ReportsUsage(path); got != want {
			t.Errorf("ReportsUsage(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestUsageModeOf(t *testing.T) {
	for ct, want := range map[string]UsageMode{
		"text/event-stream":                UsageSSE,
		"Text/Event-Stream; charset=utf-8": UsageSSE,
		"application/json":                 UsageJSON,
		" application/JSON ;charset=utf-8": UsageJSON,
		"application/x-ndjson":             UsageOff,
		"text/plain":                       UsageOff,
		"":                                 UsageOff,
	} {
		if got := UsageModeOf(ct); got != want {
			t.Errorf("UsageModeOf(%q) = %d, want %d", ct, got, want)
		}
	}
}
