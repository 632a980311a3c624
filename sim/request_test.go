package sim

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		api     endpoint
		body    string
		want    genRequest
		wantErr string
	}{
		{"chat template", chatAPI,
			`{"model":"m","messages":[{"role":"system","content":"S"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"b"}]}],"cache_salt":"k"}`,
			genRequest{Model: "m", Text: "<|system|>\nS<|end|>\n<|user|>\nab<|end|>\n<|assistant|>\n", MaxTokens: 16, Salt: "k"}, ""},
		{"chat null content", chatAPI, `{"messages":[{"role":"assistant","content":null}]}`,
			genRequest{Text: "<|assistant|>\n<|end|>\n<|assistant|>\n", MaxTokens: 16}, ""},
		{"max_completion_tokens wins", chatAPI, `{"messages":[{"role":"user","content":"x"}],"max_tokens":3,"max_completion_tokens":5}`,
			genRequest{Text: "<|user|>\nx<|end|>\n<|assistant|>\n", MaxTokens: 5}, ""},
		{"stream options", completionAPI, `{"prompt":"p","stream":true,"stream_options":{"include_usage":true},"ignore_eos":true,"max_tokens":9}`,
			genRequest{Text: "p", MaxTokens: 9, Stream: true, IncludeUsage: true, IgnoreEOS: true}, ""},
		{"prompt list joined", completionAPI, `{"prompt":["ab","cd"]}`, genRequest{Text: "abcd", MaxTokens: 16}, ""},
		{"not json", chatAPI, `nope`, genRequest{}, "not valid JSON"},
		{"content number", chatAPI, `{"messages":[{"role":"user","content":5}]}`, genRequest{}, "messages[0].content"},
		{"missing prompt", completionAPI, `{}`, genRequest{}, "prompt is missing"},
		{"prompt object", completionAPI, `{"prompt":{}}`, genRequest{}, "wrong type"},
		{"negative max", completionAPI, `{"prompt":"x","max_tokens":-1}`, genRequest{}, "at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRequest(tc.api, []byte(tc.body), 16)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, errBadRequest) {
					t.Fatalf("err %v, want a bad request containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v\nwant %+v", got, err, tc.want)
			}
		})
	}
}

func TestPromptTokens(t *testing.T) {
	for _, tc := range []struct {
		text string
		want int
	}{{"", 0}, {"a", 1}, {"abcd", 1}, {"abcde", 2}, {strings.Repeat("x", 64), 16}} {
		if got := promptTokens(tc.text); got != tc.want {
			t.Errorf("promptTokens(%d bytes) = %d, want %d", len(tc.text), got, tc.want)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"messages":[{"role":"user","content":"hi"}],"max_tokens":2}`), true)
	f.Add([]byte(`{"prompt":["a","b"],"stream":true,"stream_options":{"include_usage":true}}`), false)
	f.Fuzz(func(t *testing.T, body []byte, chat bool) {
		api := completionAPI
		if chat {
			api = chatAPI
		}
		g, err := parseRequest(api, body, 16)
		if err != nil {
			if !errors.Is(err, errBadRequest) || !strings.HasPrefix(err.Error(), "sim: ") {
				t.Fatalf("error %q is not a sim bad request", err)
			}
			return
		}
		if g.Text == "" || g.MaxTokens < 1 || (g.IncludeUsage && !g.Stream) {
			t.Fatalf("accepted an unusable request %+v", g)
		}
		if chat && !strings.HasSuffix(g.Text, "<|assistant|>\n") {
			t.Fatalf("chat text %q lacks the template tail", g.Text)
		}
	})
}
