package sim

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// vocab holds the 4-byte output tokens; output token i of a request is
// vocab[(seed+i) % len(vocab)].
var vocab = [...]string{
	" the", " sim", " kv ", "gate", " hit", " blk", " tok", " gpu",
	" and", " for", " run", " out", " yes", " ok.", " abc", " xyz",
}

// run is one admitted request: prefill, decode and the response.
type run struct {
	s     *Server
	w     http.ResponseWriter
	api   endpoint
	g     genRequest
	j     *job
	ctx   context.Context
	timer *time.Timer

	id      string
	out     int    // tokens produced so far
	total   int    // output length
	reason  string // finish reason
	seed    int
	flusher http.Flusher
}

func (r *run) serve() {
	finished := ""
	defer func() { r.s.eng.finish(r.j, finished, r.out) }()
	r.timer = time.NewTimer(time.Hour)
	defer r.timer.Stop()
	r.plan()

	cfg := r.s.cfg
	uncached := r.j.promptTokens - r.j.cached
	if r.sleep(cfg.scaled(cfg.PrefillBase+time.Duration(uncached)*cfg.PrefillPerToken)) != nil {
		r.s.replyClosing(r.w)
		return
	}
	r.s.eng.commit(r.j)
	var ok bool
	if r.g.Stream {
		ok = r.stream()
	} else {
		ok = r.whole()
	}
	if ok {
		finished = r.reason
	}
}

// plan fixes the id, the output length and the finish reason.
func (r *run) plan() {
	prefix := "cmpl-sim-"
	if r.api == chatAPI {
		prefix = "chatcmpl-sim-"
	}
	r.id = prefix + strconv.FormatUint(r.s.nextID.Add(1), 10)
	var h uint64 = uint64(len(r.g.Text))
	if len(r.j.hashes) > 0 {
		h = r.j.hashes[len(r.j.hashes)-1]
	}
	r.seed = int(h % uint64(len(vocab)))
	r.total, r.reason = r.g.MaxTokens, "length"
	if r.s.cfg.StopEarly && !r.g.IgnoreEOS {
		r.total, r.reason = 1+int(h%uint64(r.g.MaxTokens)), "stop"
	}
}

// sleep waits d or until the request is canceled.
func (r *run) sleep(d time.Duration) error {
	if d <= 0 {
		return r.ctx.Err()
	}
	r.timer.Reset(d)
	select {
	case <-r.timer.C:
		return nil
	case <-r.ctx.Done():
		r.timer.Stop()
		return r.ctx.Err()
	}
}

// next produces the next n tokens (the first one right after prefill, each
// other after one decode step) and returns their text.
func (r *run) next(n int) (string, error) {
	cfg := r.s.cfg
	var sb strings.Builder
	for range n {
		if r.out > 0 {
			others := time.Duration(max(r.s.eng.runningNow.Load()-1, 0))
			if err := r.sleep(cfg.scaled(cfg.DecodePerToken + others*cfg.DecodePerRunning)); err != nil {
				return "", err
			}
		}
		sb.WriteString(vocab[(r.seed+r.out)%len(vocab)])
		r.out++
	}
	return sb.String(), nil
}

func (r *run) usage() *usage {
	return &usage{
		PromptTokens:        r.j.promptTokens,
		CompletionTokens:    r.out,
		TotalTokens:         r.j.promptTokens + r.out,
		PromptTokensDetails: tokensDetails{CachedTokens: r.j.cached},
	}
}

// whole answers a non-streaming request once every token is produced.
func (r *run) whole() bool {
	text, err := r.next(r.total)
	if err != nil {
		r.s.replyClosing(r.w)
		return false
	}
	resp := response{ID: r.id, Created: time.Now().Unix(), Model: r.g.Model, Usage: r.usage()}
	reason := r.reason
	if r.api == chatAPI {
		resp.Object = "chat.completion"
		resp.Choices = []chatChoice{{Message: &message{Role: "assistant", Content: &text}, FinishReason: &reason}}
	} else {
		resp.Object = "text_completion"
		resp.Choices = []textChoice{{Text: text, FinishReason: &reason}}
	}
	writeJSON(r.w, http.StatusOK, &resp)
	return true
}

// stream answers with SSE events, one per TokensPerEvent tokens.
func (r *run) stream() bool {
	h := r.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	r.w.WriteHeader(http.StatusOK)
	r.flusher, _ = r.w.(http.Flusher)
	created := time.Now().Unix()
	obj := "text_completion"
	if r.api == chatAPI {
		obj = "chat.completion.chunk"
		empty := ""
		role := chunkOf(r, obj, created, []chatChoice{{Delta: &message{Role: "assistant", Content: &empty}}})
		if !r.event(role) {
			return false
		}
	}
	for r.out < r.total {
		text, err := r.next(min(r.s.cfg.TokensPerEvent, r.total-r.out))
		if err != nil {
			return false
		}
		var reason *string
		if r.out == r.total {
			reason = &r.reason
		}
		var c response
		if r.api == chatAPI {
			c = chunkOf(r, obj, created, []chatChoice{{Delta: &message{Content: &text}, FinishReason: reason}})
		} else {
			c = chunkOf(r, obj, created, []textChoice{{Text: text, FinishReason: reason}})
		}
		if !r.event(c) {
			return false
		}
	}
	if r.g.IncludeUsage {
		c := chunkOf(r, obj, created, []struct{}{})
		c.Usage = r.usage()
		if !r.event(c) {
			return false
		}
	}
	return r.write([]byte("data: [DONE]\n\n"))
}

func chunkOf(r *run, obj string, created int64, choices any) response {
	return response{ID: r.id, Object: obj, Created: created, Model: r.g.Model, Choices: choices}
}

func (r *run) event(c response) bool {
	buf, err := json.Marshal(&c)
	if err != nil {
		return false
	}
	msg := make([]byte, 0, len(buf)+8)
	msg = append(msg, "data: "...)
	msg = append(msg, buf...)
	msg = append(msg, "\n\n"...)
	return r.write(msg)
}

// write sends and flushes; false means the client is gone or we are closing.
func (r *run) write(b []byte) bool {
	if r.ctx.Err() != nil {
		return false
	}
	if _, err := r.w.Write(b); err != nil {
		return false
	}
	if r.flusher != nil {
		r.flusher.Flush()
	}
	return true
}

// Response shapes, as OpenAI and vLLM write them.
type response struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices any    `json:"choices"`
	Usage   *usage `json:"usage,omitempty"`
}

type chatChoice struct {
	Index        int       `json:"index"`
	Message      *message  `json:"message,omitempty"`
	Delta        *message  `json:"delta,omitempty"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type textChoice struct {
	Index        int       `json:"index"`
	Text         string    `json:"text"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type message struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type usage struct {
	PromptTokens        int           `json:"prompt_tokens"`
	CompletionTokens    int           `json:"completion_tokens"`
	TotalTokens         int           `json:"total_tokens"`
	PromptTokensDetails tokensDetails `json:"prompt_tokens_details"`
}

type tokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
}
