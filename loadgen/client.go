package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Client sends one trace request as a streaming OpenAI chat completion and
// measures it. A Client is safe for concurrent use once built.
type Client struct {
	// HTTP sends the requests; nil means a client made by NewHTTPClient.
	HTTP *http.Client
	// Model is the request's model field; "" leaves it out.
	Model string
	// MaxOutput caps max_tokens; 0 or less means no cap. A request whose
	// trace output length is 0 asks for 1 token.
	MaxOutput int
	// SessionHeader, when set, carries the session key of each request.
	SessionHeader string
}

// Result is what one request measured.
type Result struct {
	// TTFT is the time from sending to the first chunk with content.
	TTFT time.Duration
	// Latency is the time from sending to the end of the stream.
	Latency time.Duration
	// PromptTokens, CachedTokens and OutputTokens come from the usage chunk.
	PromptTokens, CachedTokens, OutputTokens int
	// Err is nil when the stream ended with [DONE] after a usage chunk.
	Err error
}

// NewHTTPClient returns an HTTP/1.1 client that keeps up to conns idle
// connections per host, for load generation on loopback.
func NewHTTPClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}}
}

type chatBody struct {
	Model         string        `json:"model,omitempty"`
	Messages      []chatMessage `json:"messages"`
	MaxTokens     int           `json:"max_tokens"`
	Stream        bool          `json:"stream"`
	StreamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	IgnoreEOS bool `json:"ignore_eos"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Body returns the JSON body sent for req.
func (c *Client) Body(req Request) ([]byte, error) {
	out := req.OutputLength
	if c.MaxOutput > 0 {
		out = min(out, c.MaxOutput)
	}
	b := chatBody{
		Model:     c.Model,
		Messages:  []chatMessage{{Role: "user", Content: PromptText(req.HashIDs, req.InputLength)}},
		MaxTokens: max(out, 1),
		Stream:    true,
		IgnoreEOS: true,
	}
	b.StreamOptions.IncludeUsage = true
	return json.Marshal(&b)
}

// Do sends req to baseURL + "/v1/chat/completions" and reads the stream to
// its end. session is sent in SessionHeader when both are set.
func (c *Client) Do(ctx context.Context, baseURL string, req Request, session string) Result {
	body, err := c.Body(req)
	if err != nil {
		return Result{Err: fmt.Errorf("loadgen: encode request: %w", err)}
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return Result{Err: fmt.Errorf("loadgen: build request: %w", err)}
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "text/event-stream")
	if c.SessionHeader != "" && session != "" {
		hr.Header.Set(c.SessionHeader, session)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	start := time.Now()
	resp, err := hc.Do(hr)
	if err != nil {
		return Result{Err: fmt.Errorf("loadgen: send: %w", err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return Result{Err: fmt.Errorf("loadgen: status %d: %s", resp.StatusCode, bytes.TrimSpace(msg))}
	}
	res := readStream(resp.Body, start)
	res.Latency = time.Since(start)
	return res
}

type chunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens        int `json:"prompt_tokens"`
		CompletionTokens    int `json:"completion_tokens"`
		PromptTokensDetails *struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
}

// readStream reads SSE events until [DONE].
func readStream(r io.Reader, start time.Time) Result {
	var res Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 16<<10), 1<<20)
	usage := false
	for sc.Scan() {
		line := sc.Bytes()
		data, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		data = bytes.TrimSpace(data)
		if string(data) == "[DONE]" {
			if !usage {
				res.Err = errors.New("loadgen: stream ended without a usage chunk; the server ignored stream_options.include_usage")
			}
			return res
		}
		var c chunk
		if err := json.Unmarshal(data, &c); err != nil {
			res.Err = fmt.Errorf("loadgen: bad stream event: %w", err)
			return res
		}
		if res.TTFT == 0 && len(c.Choices) > 0 && c.Choices[0].Delta.Content != "" {
			res.TTFT = time.Since(start)
		}
		if c.Usage != nil {
			usage = true
			res.PromptTokens = c.Usage.PromptTokens
			res.OutputTokens = c.Usage.CompletionTokens
			if d := c.Usage.PromptTokensDetails; d != nil {
				res.CachedTokens = d.CachedTokens
			}
		}
	}
	res.Err = fmt.Errorf("loadgen: stream cut before [DONE]: %w", errors.Join(sc.Err(), io.ErrUnexpectedEOF))
	return res
}
