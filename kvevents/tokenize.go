package kvevents

import (
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Tokenizer asks model servers for the token ids of requests (vLLM's POST
// /tokenize: {"model", "messages"} with the chat template applied by the
// server, or {"model", "prompt"}; the answer's "tokens"), keeping the
// answers of the last Size prompts (LRU by a hash of model, kind and the
// raw messages or prompt). Every call is bounded by Timeout and by a limit
// on calls in flight; a caller that gets an error picks approximately.
// It is safe for concurrent use.
type Tokenizer struct {
	client  *http.Client
	path    string
	timeout time.Duration
	size    int
	sem     chan struct{}

	mu  sync.Mutex
	lru *list.List // of *tokEntry, most recent first
	by  map[uint64]*list.Element

	hits, misses, failures atomic.Uint64
}

type tokEntry struct {
	key    uint64
	tokens []uint32
}

// maxTokenizeInFlight bounds concurrent tokenize calls per Tokenizer.
const maxTokenizeInFlight = 64

// maxTokenizeReply bounds one answer's size.
const maxTokenizeReply = 16 << 20

// ErrNoPrompt means the body has no prompt the tokenizer can take (not JSON,
// neither messages nor a string prompt).
var ErrNoPrompt = errors.New("kvevents: the body has neither messages nor a prompt to tokenize")

// NewTokenizer returns a Tokenizer calling path (e.g. /tokenize) with client.
func NewTokenizer(client *http.Client, path string, timeout time.Duration, size int) *Tokenizer {
	return &Tokenizer{client: client, path: path, timeout: timeout, size: max(size, 1),
		sem: make(chan struct{}, maxTokenizeInFlight), lru: list.New(), by: map[uint64]*list.Element{}}
}

// TokenizerStats counts cache hits, calls made and calls that failed.
type TokenizerStats struct{ Hits, Misses, Failures uint64 }

// Stats returns the counters.
func (t *Tokenizer) Stats() TokenizerStats {
	return TokenizerStats{t.hits.Load(), t.misses.Load(), t.failures.Load()}
}

type tokBody struct {
	Model    string          `json:"model,omitempty"`
	Messages json.RawMessage `json:"messages,omitempty"`
	Prompt   json.RawMessage `json:"prompt,omitempty"`
	Tools    json.RawMessage `json:"tools,omitempty"`
}

// Tokens returns the token ids of an OpenAI request body, from the cache or
// from POST base+path (base is scheme://host:port). The result is shared:
// the caller must not modify it.
//
// Two keys name each answer: a hash of the whole body (a repeated request
// is found without reading its JSON) and a hash of the fields the server
// tokenizes (a prompt repeated with other sampling options); the cache
// holds Size keys.
func (t *Tokenizer) Tokens(ctx context.Context, base string, body []byte) ([]uint32, error) {
	bodyKey := xxhash.Sum64(body) ^ 0x9e3779b97f4a7c15 // kept apart from prompt keys
	if toks, ok := t.get(bodyKey); ok {
		t.hits.Add(1)
		return toks, nil
	}
	var in tokBody
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, ErrNoPrompt
	}
	out := tokBody{Model: in.Model}
	d := xxhash.New()
	_, _ = d.WriteString(in.Model)
	switch {
	case len(in.Messages) > 0 && in.Messages[0] == '[':
		out.Messages, out.Tools = in.Messages, in.Tools
		_, _ = d.WriteString("\x00chat\x00")
		_, _ = d.Write(in.Messages)
		_, _ = d.WriteString("\x00")
		_, _ = d.Write(in.Tools)
	case len(in.Prompt) > 0 && in.Prompt[0] == '"':
		out.Prompt = in.Prompt
		_, _ = d.WriteString("\x00prompt\x00")
		_, _ = d.Write(in.Prompt)
	default:
		return nil, ErrNoPrompt
	}
	key := d.Sum64()
	if toks, ok := t.get(key); ok {
		t.hits.Add(1)
		t.put(bodyKey, toks)
		return toks, nil
	}
	t.misses.Add(1)
	toks, err := t.call(ctx, base, &out)
	if err != nil {
		t.failures.Add(1)
		return nil, err
	}
	t.put(key, toks)
	t.put(bodyKey, toks)
	return toks, nil
}

func (t *Tokenizer) get(key uint64) ([]uint32, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.by[key]; ok {
		t.lru.MoveToFront(el)
		return el.Value.(*tokEntry).tokens, true
	}
	return nil, false
}

func (t *Tokenizer) put(key uint64, toks []uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.by[key]; ok {
		return
	}
	t.by[key] = t.lru.PushFront(&tokEntry{key, toks})
	for t.lru.Len() > t.size {
		el := t.lru.Back()
		t.lru.Remove(el)
		delete(t.by, el.Value.(*tokEntry).key)
	}
}

func (t *Tokenizer) call(ctx context.Context, base string, body *tokBody) ([]uint32, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	select {
	case t.sem <- struct{}{}:
		defer func() { <-t.sem }()
	default:
		return nil, fmt.Errorf("kvevents: %d tokenize calls already in flight; picking approximately", maxTokenizeInFlight)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+t.path, bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kvevents: tokenize on %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("kvevents: POST %s%s answered %d; check inference.kvEvents.tokenizePath", base, t.path, resp.StatusCode)
	}
	var out struct {
		Tokens []uint32 `json:"tokens"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxTokenizeReply)).Decode(&out); err != nil {
		return nil, fmt.Errorf("kvevents: tokenize answer from %s: %w", base, err)
	}
	return out.Tokens, nil
}
