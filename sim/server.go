package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Server is one simulated model server. Its methods are safe for concurrent
// use. Build it with New; serve it with Handler or Start.
type Server struct {
	cfg     Config // with defaults, durations unscaled
	eng     *engine
	created int64
	nextID  atomic.Uint64

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // handlers in flight
	mu     sync.Mutex     // orders wg.Add against Close
	closed bool
}

// New returns a Server for cfg, with zero fields set to their defaults.
// It panics if cfg.Validate fails; call Validate first for untrusted input.
func New(cfg Config) *Server {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:     cfg,
		eng:     newEngine(cfg.MaxBatch, cfg.NumGPUBlocks),
		created: time.Now().Unix(),
		ctx:     ctx,
		cancel:  cancel,
	}
}

// Config returns the configuration in effect, defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Stats returns a snapshot of the counters and gauges.
func (s *Server) Stats() Stats { return s.eng.stats() }

// Close cancels every request in flight (they free their slots and end their
// responses early), makes new requests fail with 503, and waits for the
// handlers to return. A handler blocked writing to a client that does not
// read returns only once the HTTP server closes that connection, so close
// the HTTP server too (Running.Close does both). Close is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// enter registers a handler; false means the server is closed.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// Handler returns the HTTP handler serving the OpenAI and metrics endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/chat/completions", s.method(http.MethodPost, func(w http.ResponseWriter, r *http.Request) {
		s.generate(w, r, chatAPI)
	}))
	mux.HandleFunc("/v1/completions", s.method(http.MethodPost, func(w http.ResponseWriter, r *http.Request) {
		s.generate(w, r, completionAPI)
	}))
	mux.HandleFunc("/v1/models", s.method(http.MethodGet, s.models))
	mux.HandleFunc("/tokenize", s.method(http.MethodPost, s.tokenize))
	mux.HandleFunc("/metrics", s.method(http.MethodGet, s.metrics))
	mux.HandleFunc("/health", s.method(http.MethodGet, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "sim: no route for "+r.URL.Path+"; use /v1/chat/completions, /v1/completions, /tokenize, /v1/models or /metrics")
	})
	return mux
}

func (s *Server) method(m string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != m && !(m == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", m)
			writeError(w, http.StatusMethodNotAllowed, "sim: "+r.Method+" is not allowed on "+r.URL.Path+"; use "+m)
			return
		}
		h(w, r)
	}
}

// errorBody is vLLM's error shape: {"error": {message, type, param, code}}.
type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    int     `json:"code"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	var b errorBody
	b.Error.Message = msg
	b.Error.Code = status
	switch status {
	case http.StatusBadRequest:
		b.Error.Type = "BadRequestError"
	case http.StatusNotFound:
		b.Error.Type = "NotFoundError"
	case http.StatusMethodNotAllowed:
		b.Error.Type = "MethodNotAllowed"
	case http.StatusRequestEntityTooLarge:
		b.Error.Type = "RequestEntityTooLarge"
	default:
		b.Error.Type = "ServiceUnavailableError"
	}
	writeJSON(w, status, &b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	buf, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(buf)))
	w.WriteHeader(status)
	_, _ = w.Write(buf)
}

func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	type model struct {
		ID          string `json:"id"`
		Object      string `json:"object"`
		Created     int64  `json:"created"`
		OwnedBy     string `json:"owned_by"`
		Root        string `json:"root"`
		MaxModelLen int    `json:"max_model_len"`
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data": []model{{
			ID: s.cfg.Model, Object: "model", Created: s.created, OwnedBy: "kvgate-sim",
			Root: s.cfg.Model, MaxModelLen: s.cfg.NumGPUBlocks * BlockTokens,
		}},
	})
}

// generate serves one chat or completion request from parse to last byte.
func (s *Server) generate(w http.ResponseWriter, r *http.Request, api endpoint) {
	if !s.enter() {
		writeError(w, http.StatusServiceUnavailable, "sim: server is closing; retry on another endpoint")
		return
	}
	defer s.wg.Done()
	g, ok := s.readRequest(w, r, api)
	if !ok {
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	hashes := BlockHashes(s.cfg.Model, g.Salt, g.Text)
	j := newJob(hashes, promptTokens(g.Text), g.MaxTokens)
	j.text = g.Text
	if j.need > s.cfg.NumGPUBlocks {
		writeError(w, http.StatusBadRequest, fmt.Sprintf(
			"sim: prompt (%d tokens) plus max_tokens (%d) needs %d blocks of %d tokens, the cache has %d; shorten the request or raise NumGPUBlocks",
			j.promptTokens, g.MaxTokens, j.need, BlockTokens, s.cfg.NumGPUBlocks))
		return
	}
	if s.eng.wait(ctx, j) != nil {
		s.replyClosing(w)
		return
	}
	run := &run{s: s, w: w, api: api, g: g, j: j, ctx: ctx}
	run.serve()
}

// replyClosing answers 503 to a request that Close cut short before any
// byte of its response; a request cut short by its own client gets nothing.
func (s *Server) replyClosing(w http.ResponseWriter) {
	if s.ctx.Err() != nil {
		writeError(w, http.StatusServiceUnavailable, "sim: server closed while the request was in flight; retry on another endpoint")
	}
}

// readRequest reads and parses the body, answering errors itself.
func (s *Server) readRequest(w http.ResponseWriter, r *http.Request, api endpoint) (genRequest, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		if _, big := errors.AsType[*http.MaxBytesError](err); big {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("sim: body exceeds %d bytes; send a shorter prompt", s.cfg.MaxBodyBytes))
		} else {
			writeError(w, http.StatusBadRequest, "sim: reading body: "+err.Error())
		}
		return genRequest{}, false
	}
	g, err := parseRequest(api, body, s.cfg.DefaultMaxTokens)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return genRequest{}, false
	}
	if g.Model != "" && g.Model != s.cfg.Model {
		writeError(w, http.StatusNotFound, fmt.Sprintf("sim: the model `%s` does not exist; this server serves %q", g.Model, s.cfg.Model))
		return genRequest{}, false
	}
	g.Model = s.cfg.Model
	return g, true
}

// tokenizeResponse is vLLM's POST /tokenize answer.
type tokenizeResponse struct {
	Count       int      `json:"count"`
	MaxModelLen int      `json:"max_model_len"`
	Tokens      []uint32 `json:"tokens"`
}

// tokenize serves POST /tokenize as vLLM does: {"model", "messages"} is
// rendered with the chat template (the generation prompt included),
// {"model", "prompt"} is taken as is; the answer lists the token ids.
func (s *Server) tokenize(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		writeError(w, http.StatusBadRequest, "sim: reading body: "+err.Error())
		return
	}
	var b apiBody
	if err := json.Unmarshal(body, &b); err != nil {
		writeError(w, http.StatusBadRequest, "sim: body is not valid JSON; send {\"model\", \"messages\"} or {\"model\", \"prompt\"}")
		return
	}
	if b.Model != "" && b.Model != s.cfg.Model {
		writeError(w, http.StatusNotFound, fmt.Sprintf("sim: the model `%s` does not exist; this server serves %q", b.Model, s.cfg.Model))
		return
	}
	var text string
	if b.Messages != nil {
		text, err = chatTemplate(b.Messages)
	} else {
		text, err = promptText(b.Prompt)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if d := s.cfg.TokenizeDelay; d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		}
	}
	tokens := TokenIDs(text)
	writeJSON(w, http.StatusOK, tokenizeResponse{Count: len(tokens), MaxModelLen: s.cfg.NumGPUBlocks * BlockTokens, Tokens: tokens})
}
