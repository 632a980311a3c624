package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// endpoint tells the two generation APIs apart.
type endpoint int

const (
	chatAPI endpoint = iota
	completionAPI
)

// genRequest is what the engine needs from one generation request.
type genRequest struct {
	Model        string
	Text         string // prompt text after the chat template
	MaxTokens    int
	Stream       bool
	IncludeUsage bool
	IgnoreEOS    bool
	Salt         string
}

// apiBody is the subset of the OpenAI / vLLM request body the simulator reads.
// Unknown fields are ignored, as vLLM does for most sampling options.
type apiBody struct {
	Model               string          `json:"model"`
	Messages            []chatMessage   `json:"messages"`
	Prompt              json.RawMessage `json:"prompt"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	N                   *int            `json:"n"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	IgnoreEOS bool   `json:"ignore_eos"`
	CacheSalt string `json:"cache_salt"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// errBadRequest marks errors that are the client's fault (HTTP 400).
var errBadRequest = errors.New("sim: bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadRequest}, args...)...)
}

// parseRequest decodes one generation request body. Every error wraps
// errBadRequest and says what to fix. defaultMax is used when the body sets
// no output length.
func parseRequest(api endpoint, body []byte, defaultMax int) (genRequest, error) {
	var b apiBody
	if err := json.Unmarshal(body, &b); err != nil {
		return genRequest{}, badRequest("body is not valid JSON (%v); send an OpenAI request object", err)
	}
	g := genRequest{Model: b.Model, Stream: b.Stream, IgnoreEOS: b.IgnoreEOS, Salt: b.CacheSalt}
	var err error
	switch api {
	case chatAPI:
		g.Text, err = chatTemplate(b.Messages)
	default:
		g.Text, err = promptText(b.Prompt)
	}
	if err != nil {
		return genRequest{}, err
	}
	g.MaxTokens = defaultMax
	if b.MaxTokens != nil {
		g.MaxTokens = *b.MaxTokens
	}
	if b.MaxCompletionTokens != nil {
		g.MaxTokens = *b.MaxCompletionTokens
	}
	if g.MaxTokens < 1 {
		return genRequest{}, badRequest("max_tokens is %d; it must be at least 1", g.MaxTokens)
	}
	if b.N != nil && *b.N != 1 {
		return genRequest{}, badRequest("n is %d; the simulator serves n=1 only", *b.N)
	}
	if b.StreamOptions != nil {
		if !b.Stream {
			return genRequest{}, badRequest("stream_options is set without stream=true; drop it or set stream")
		}
		g.IncludeUsage = b.StreamOptions.IncludeUsage
	}
	return g, nil
}

// chatTemplate renders messages with the fixed template of the package comment.
func chatTemplate(msgs []chatMessage) (string, error) {
	if len(msgs) == 0 {
		return "", badRequest("messages is empty; send at least one message")
	}
	var sb strings.Builder
	for i, m := range msgs {
		if m.Role == "" {
			return "", badRequest("messages[%d].role is empty; set system, user, assistant or tool", i)
		}
		text, err := contentText(m.Content)
		if err != nil {
			return "", badRequest("messages[%d].content: %v", i, err)
		}
		sb.WriteString("<|")
		sb.WriteString(m.Role)
		sb.WriteString("|>\n")
		sb.WriteString(text)
		sb.WriteString("<|end|>\n")
	}
	sb.WriteString("<|assistant|>\n")
	return sb.String(), nil
}

// contentText flattens a message content: null, a string, or a list of parts.
func contentText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	switch raw[0] {
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case '[':
		var parts []contentPart
		if err := json.Unmarshal(raw, &parts); err != nil {
			return "", fmt.Errorf("want a string or a list of {type, text} parts: %w", err)
		}
		var sb strings.Builder
		for _, p := range parts {
			sb.WriteString(p.Text)
		}
		return sb.String(), nil
	}
	return "", errors.New("want a string or a list of {type, text} parts")
}

// promptText reads a completions prompt: a string or a list of strings.
func promptText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	const fix = "send prompt as a non-empty string or list of strings"
	if len(raw) == 0 || string(raw) == "null" {
		return "", badRequest("prompt is missing; %s", fix)
	}
	var text string
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &text); err != nil {
			return "", badRequest("prompt: %v; %s", err, fix)
		}
	case '[':
		var list []string
		if err := json.Unmarshal(raw, &list); err != nil {
			return "", badRequest("prompt is not a list of strings (token-id prompts are not simulated); %s", fix)
		}
		text = strings.Join(list, "")
	default:
		return "", badRequest("prompt has the wrong type; %s", fix)
	}
	if text == "" {
		return "", badRequest("prompt is empty; %s", fix)
	}
	return text, nil
}

// promptTokens is the stand-in tokenizer's count: ceil(len(text)/4).
func promptTokens(text string) int {
	return (len(text) + CharsPerToken - 1) / CharsPerToken
}
