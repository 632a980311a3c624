package sim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strconv"
	"strings"
	"testing"
	"time"
)

// longText is a prompt of n bytes that differs per seed from the first byte.
func longText(seed string, n int) string {
	return strings.Repeat(seed+" ", n/(len(seed)+1)+1)[:n]
}

func TestStreamingOrderAndDone(t *testing.T) {
	r, c := startSim(t, Config{Model: "m", TokensPerEvent: 2})
	for _, tc := range []struct {
		name, path, object string
		body               map[string]any
	}{
		{"chat", "/v1/chat/completions", "chat.completion.chunk", map[string]any{
			"model": "m", "stream": true, "max_tokens": 5,
			"messages": []map[string]any{{"role": "user", "content": "hello"}}}},
		{"completion", "/v1/completions", "text_completion", map[string]any{
			"model": "m", "stream": true, "max_tokens": 5, "prompt": "hello"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(context.Background(), t, c, r.URL+tc.path, tc.body)
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Fatalf("content type %q", ct)
			}
			events := sseEvents(t, resp.Body)
			if n := len(events); n < 2 || events[n-1] != "[DONE]" {
				t.Fatalf("stream does not end with [DONE]: %q", events)
			}
			var text strings.Builder
			finishes := 0
			for i, ev := range events[:len(events)-1] {
				var ch streamChunk
				if err := json.Unmarshal([]byte(ev), &ch); err != nil {
					t.Fatalf("event %d %q: %v", i, ev, err)
				}
				if ch.Object != tc.object || ch.Model != "m" || ch.Usage != nil || len(ch.Choices) != 1 {
					t.Fatalf("event %d has the wrong shape: %s", i, ev)
				}
				if tc.path == "/v1/chat/completions" && i == 0 && ch.Choices[0].Delta.Role != "assistant" {
					t.Fatalf("first chat chunk has no assistant role: %s", ev)
				}
				if finishes > 0 {
					t.Fatalf("event %d after the finish_reason: %s", i, ev)
				}
				if f := ch.Choices[0].FinishReason; f != nil {
					if *f != "length" {
						t.Fatalf("finish_reason %q, want length", *f)
					}
					finishes++
				}
				text.WriteString(ch.Choices[0].Text + ch.Choices[0].Delta.Content)
			}
			if finishes != 1 {
				t.Fatalf("%d chunks carry a finish_reason, want 1", finishes)
			}
			if got := text.Len(); got != 5*CharsPerToken {
				t.Fatalf("streamed %d bytes of text, want %d (5 tokens)", got, 5*CharsPerToken)
			}
		})
	}
}

// streamUsage sends one streaming completion with include_usage and returns the usage chunk.
func streamUsage(t *testing.T, c *http.Client, base string, body map[string]any) streamChunk {
	t.Helper()
	body["stream"] = true
	body["stream_options"] = map[string]any{"include_usage": true}
	resp := post(context.Background(), t, c, base+"/v1/completions", body)
	defer resp.Body.Close()
	events := sseEvents(t, resp.Body)
	if len(events) < 2 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("bad stream %q", events)
	}
	var last streamChunk
	if err := json.Unmarshal([]byte(events[len(events)-2]), &last); err != nil {
		t.Fatal(err)
	}
	if last.Usage == nil || len(last.Choices) != 0 {
		t.Fatalf("last chunk before [DONE] is not a usage chunk: %s", events[len(events)-2])
	}
	return last
}

func TestIncludeUsageCachedTokensGrow(t *testing.T) {
	r, c := startSim(t, fast())
	base := longText("system prompt", 400) // 100 tokens, 6 full blocks
	prompts := []string{base, base, base + longText("more", 200)}
	wantCached := []int{0, (100 - 1) / 16 * 16, 6 * 16}
	for i, p := range prompts {
		u := streamUsage(t, c, r.URL, map[string]any{"prompt": p, "max_tokens": 3}).Usage
		if u.PromptTokens != promptTokens(p) || u.CompletionTokens != 3 || u.TotalTokens != u.PromptTokens+3 {
			t.Fatalf("request %d: usage %+v for a %d-byte prompt", i, *u, len(p))
		}
		if got := u.PromptTokensDetails.CachedTokens; got != wantCached[i] {
			t.Fatalf("request %d: cached_tokens %d, want %d", i, got, wantCached[i])
		}
	}
	st := r.Server.Stats()
	var queried uint64
	for _, p := range prompts {
		queried += uint64(promptTokens(p))
	}
	if st.PrefixQueryTokens != queried || st.PrefixHitTokens != uint64(wantCached[1]+wantCached[2]) {
		t.Fatalf("stats queries %d hits %d, want %d and %d", st.PrefixQueryTokens, st.PrefixHitTokens, queried, wantCached[1]+wantCached[2])
	}
	m := scrape(t, c, r.URL)
	if got := m[`vllm:prefix_cache_hits_total{model_name="m"}`]; got != strconv.FormatUint(st.PrefixHitTokens, 10) {
		t.Fatalf("metrics hits %q, stats %d", got, st.PrefixHitTokens)
	}
}

func TestNonStreamingResponses(t *testing.T) {
	r, c := startSim(t, fast())
	for _, tc := range []struct {
		name, path, object string
		body               map[string]any
		wantTokens         int
	}{
		{"chat max_completion_tokens", "/v1/chat/completions", "chat.completion", map[string]any{
			"model": "m", "max_tokens": 2, "max_completion_tokens": 7,
			"messages": []map[string]any{{"role": "system", "content": "be brief"},
				{"role": "user", "content": []map[string]any{{"type": "text", "text": "hi"}}}}}, 7},
		{"completion default length", "/v1/completions", "text_completion", map[string]any{"prompt": []string{"a", "b"}}, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got streamChunk
			postJSON(t, c, r.URL+tc.path, tc.body, http.StatusOK, &got)
			if got.Object != tc.object || got.Model != "m" || len(got.Choices) != 1 || got.Usage == nil {
				t.Fatalf("wrong shape: %+v", got)
			}
			ch := got.Choices[0]
			text := ch.Text + ch.Message.Content
			if len(text) != tc.wantTokens*CharsPerToken || got.Usage.CompletionTokens != tc.wantTokens {
				t.Fatalf("text %q and usage %+v, want %d tokens", text, *got.Usage, tc.wantTokens)
			}
			if ch.FinishReason == nil || *ch.FinishReason != "length" {
				t.Fatalf("finish_reason %v", ch.FinishReason)
			}
		})
	}
}

func TestStopEarlyAndIgnoreEOS(t *testing.T) {
	cfg := fast()
	cfg.StopEarly = true
	r, c := startSim(t, cfg)
	stops := 0
	for i := range 8 {
		prompt := longText("p"+strconv.Itoa(i), 130)
		for _, ignore := range []bool{false, true} {
			var got streamChunk
			postJSON(t, c, r.URL+"/v1/completions", map[string]any{"prompt": prompt, "max_tokens": 50, "ignore_eos": ignore}, http.StatusOK, &got)
			n, reason := got.Usage.CompletionTokens, *got.Choices[0].FinishReason
			switch {
			case ignore && (n != 50 || reason != "length"):
				t.Fatalf("ignore_eos: %d tokens, finish %q; want 50, length", n, reason)
			case !ignore && (n < 1 || n > 50 || reason != "stop"):
				t.Fatalf("eos: %d tokens, finish %q; want 1..50, stop", n, reason)
			case !ignore && n < 50:
				stops++
			}
		}
	}
	if stops == 0 {
		t.Fatal("StopEarly never stopped before max_tokens in 8 prompts")
	}
}

func TestCacheSaltIsolation(t *testing.T) {
	r, c := startSim(t, fast())
	prompt := longText("shared", 330) // 83 tokens, lookup 5 blocks
	steps := []struct {
		salt       any
		wantCached int
	}{
		{nil, 0}, {"alice", 0}, {"alice", 80}, {"bob", 0}, {nil, 80}, {"bob", 80},
	}
	for i, s := range steps {
		body := map[string]any{"prompt": prompt, "max_tokens": 1}
		if s.salt != nil {
			body["cache_salt"] = s.salt
		}
		u := streamUsage(t, c, r.URL, body).Usage
		if got := u.PromptTokensDetails.CachedTokens; got != s.wantCached {
			t.Fatalf("step %d (salt %v): cached %d, want %d", i, s.salt, got, s.wantCached)
		}
	}
}

func TestLRUEvictionAtCapacity(t *testing.T) {
	cfg := fast()
	cfg.NumGPUBlocks = 5
	r, c := startSim(t, cfg)
	// Each prompt is 33 tokens: 2 full blocks that can hit, 3 blocks held while running.
	a, b, d := longText("aaaa", 130), longText("bbbb", 130), longText("cccc", 130)
	steps := []struct {
		name       string
		prompt     string
		wantCached int
	}{
		{"a fills", a, 0},
		{"b fills", b, 0},
		{"a hits", a, 32},    // a becomes most recent
		{"c evicts b", d, 0}, // needs 3 blocks: 1 free + b's 2 evicted
		{"a still hits", a, 32},
		{"b was evicted", b, 0},
	}
	for _, s := range steps {
		u := streamUsage(t, c, r.URL, map[string]any{"prompt": s.prompt, "max_tokens": 1}).Usage
		if got := u.PromptTokensDetails.CachedTokens; got != s.wantCached {
			t.Fatalf("%s: cached %d, want %d", s.name, got, s.wantCached)
		}
		if st := r.Server.Stats(); st.CachedBlocks > cfg.NumGPUBlocks || st.UsedBlocks != 0 {
			t.Fatalf("%s: %d cached and %d used blocks in a pool of %d", s.name, st.CachedBlocks, st.UsedBlocks, cfg.NumGPUBlocks)
		}
	}
}

func TestPromptTooLargeForPool(t *testing.T) {
	cfg := fast()
	cfg.NumGPUBlocks = 2
	r, c := startSim(t, cfg)
	var e errorBody
	postJSON(t, c, r.URL+"/v1/completions", map[string]any{"prompt": longText("x", 200), "max_tokens": 1}, http.StatusBadRequest, &e)
	if !strings.Contains(e.Error.Message, "NumGPUBlocks") {
		t.Fatalf("message does not say what to raise: %q", e.Error.Message)
	}
}

// slow holds every request at its first decode step for an hour.
func slow(maxBatch int) Config {
	return Config{Model: "m", NumGPUBlocks: 256, MaxBatch: maxBatch, DecodePerToken: time.Hour}
}

func TestQueueingBeyondMaxBatchInMetrics(t *testing.T) {
	r, c := startSim(t, slow(2))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	const n = 5
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			body := map[string]any{"prompt": "p" + strconv.Itoa(i), "max_tokens": 4}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.URL+"/v1/completions", strings.NewReader(mustJSON(body)))
			if resp, err := c.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	model := `{model_name="m"}`
	eventually(t, "2 running and 3 waiting", func() bool {
		m := scrape(t, c, r.URL)
		return m["vllm:num_requests_running"+model] == "2" && m["vllm:num_requests_waiting"+model] == "3"
	})
	if u := r.Server.Stats().KVCacheUsage; u <= 0 || u > 1 {
		t.Fatalf("kv usage %v with 2 running requests, want in (0, 1]", u)
	}
	cancel()
	for range n {
		<-done
	}
	eventually(t, "queue and batch to drain", func() bool {
		m := scrape(t, c, r.URL)
		return m["vllm:num_requests_running"+model] == "0" && m["vllm:num_requests_waiting"+model] == "0" &&
			m["vllm:kv_cache_usage_perc"+model] == "0"
	})
	if st := r.Server.Stats(); st.Aborted != n || st.Requests != n {
		t.Fatalf("stats %+v, want %d requests all aborted", st, n)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestDisconnectMidStreamFreesSlot(t *testing.T) {
	r, c := startSim(t, slow(1))
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	respA := post(ctxA, t, c, r.URL+"/v1/completions", map[string]any{"prompt": "a", "max_tokens": 10, "stream": true})
	buf := make([]byte, 6)
	if _, err := io.ReadFull(respA.Body, buf); err != nil || string(buf) != "data: " {
		t.Fatalf("first event: %q %v", buf, err)
	}

	// B needs one token only (no decode step), so it finishes as soon as it runs.
	type result struct {
		got streamChunk
		err error
	}
	bDone := make(chan result, 1)
	go func() {
		resp := post(context.Background(), t, c, r.URL+"/v1/completions", map[string]any{"prompt": "b", "max_tokens": 1})
		defer resp.Body.Close()
		var res result
		res.err = json.NewDecoder(resp.Body).Decode(&res.got)
		bDone <- res
	}()
	eventually(t, "B to queue behind A", func() bool { return r.Server.Stats().Waiting == 1 })

	cancelA()
	respA.Body.Close()
	var res result
	select {
	case res = <-bDone:
	case <-time.After(10 * time.Second):
		t.Fatal("B never ran: the disconnected stream kept its batch slot")
	}
	if res.err != nil || res.got.Usage == nil || res.got.Usage.CompletionTokens != 1 {
		t.Fatalf("B after A left: %+v %v", res.got, res.err)
	}
	st := r.Server.Stats()
	if st.Aborted != 1 || st.SucceededLength != 1 || st.Running != 0 {
		t.Fatalf("stats after disconnect: %+v", st)
	}
}

func TestMetricsNames(t *testing.T) {
	cfg := fast()
	cfg.NumGPUBlocks = 77
	r, c := startSim(t, cfg)
	var out streamChunk
	postJSON(t, c, r.URL+"/v1/completions", map[string]any{"prompt": longText("q", 100)}, http.StatusOK, &out)
	m := scrape(t, c, r.URL)
	model := `{model_name="m"}`
	want := map[string]string{
		"vllm:num_requests_waiting" + model:                                                       "0",
		"vllm:num_requests_running" + model:                                                       "0",
		"vllm:kv_cache_usage_perc" + model:                                                        "0",
		"vllm:gpu_cache_usage_perc" + model:                                                       "0",
		"vllm:prefix_cache_queries_total" + model:                                                 "25",
		"vllm:prefix_cache_hits_total" + model:                                                    "0",
		"vllm:prompt_tokens_total" + model:                                                        "25",
		"vllm:generation_tokens_total" + model:                                                    "16",
		`vllm:request_success_total{finished_reason="length",model_name="m"}`:                     "1",
		`vllm:request_success_total{finished_reason="stop",model_name="m"}`:                       "0",
		`vllm:cache_config_info{block_size="16",num_gpu_blocks="77"}`:                             "1",
		`vllm:lora_requests_info{running_lora_adapters="",waiting_lora_adapters="",max_lora="0"}`: "1",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	if len(m) != len(want) {
		t.Errorf("exposition has %d samples, want %d: %v", len(m), len(want), m)
	}
}

func TestBadInput(t *testing.T) {
	r, c := startSim(t, fast())
	chat := r.URL + "/v1/chat/completions"
	for _, tc := range []struct {
		name, method, url, body string
		status                  int
		errType                 string
	}{
		{"bad json", "POST", chat, `{"messages": [`, 400, "BadRequestError"},
		{"unknown model", "POST", chat, `{"model":"other","messages":[{"role":"user","content":"x"}]}`, 404, "NotFoundError"},
		{"no messages", "POST", chat, `{"model":"m","messages":[]}`, 400, "BadRequestError"},
		{"empty role", "POST", chat, `{"messages":[{"content":"x"}]}`, 400, "BadRequestError"},
		{"zero max_tokens", "POST", chat, `{"messages":[{"role":"user","content":"x"}],"max_tokens":0}`, 400, "BadRequestError"},
		{"n=2", "POST", chat, `{"messages":[{"role":"user","content":"x"}],"n":2}`, 400, "BadRequestError"},
		{"stream_options without stream", "POST", chat, `{"messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}}`, 400, "BadRequestError"},
		{"token-id prompt", "POST", r.URL + "/v1/completions", `{"prompt":[1,2,3]}`, 400, "BadRequestError"},
		{"empty prompt", "POST", r.URL + "/v1/completions", `{"prompt":""}`, 400, "BadRequestError"},
		{"wrong method", "GET", chat, ``, 405, "MethodNotAllowed"},
		{"unknown path", "GET", r.URL + "/v2/nothing", ``, 404, "NotFoundError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e errorBody
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("error body is not JSON: %v", err)
			}
			if resp.StatusCode != tc.status || e.Error.Code != tc.status || e.Error.Type != tc.errType || e.Error.Message == "" {
				t.Fatalf("got %d %+v, want %d %s", resp.StatusCode, e, tc.status, tc.errType)
			}
		})
	}
	if st := r.Server.Stats(); st.Requests != 0 {
		t.Fatalf("%d bad requests reached the engine", st.Requests)
	}
}

func TestModelsAndKeepAlive(t *testing.T) {
	r, c := startSim(t, fast())
	reused := 0
	for range 3 {
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
			if i.Reused {
				reused++
			}
		}}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, r.URL+"/v1/models", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var list struct {
			Object string `json:"object"`
			Data   []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if err != nil || list.Object != "list" || len(list.Data) != 1 || list.Data[0].ID != "m" {
			t.Fatalf("models: %+v %v", list, err)
		}
	}
	if reused != 2 {
		t.Fatalf("%d of 3 requests reused the connection, want 2", reused)
	}
}

func TestCloseAbortsInFlight(t *testing.T) {
	r, err := Start(context.Background(), "127.0.0.1:0", slow(1))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	resp := post(context.Background(), t, c, r.URL+"/v1/completions", map[string]any{"prompt": "a", "max_tokens": 3, "stream": true})
	defer resp.Body.Close()
	if err := r.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	events := sseEvents(t, &tolerant{resp.Body})
	if len(events) == 0 || events[len(events)-1] == "[DONE]" {
		t.Fatalf("a closed server finished the stream: %q", events)
	}
	if st := r.Server.Stats(); st.Aborted != 1 || st.Running != 0 {
		t.Fatalf("stats after close: %+v", st)
	}
}

// tolerant turns a read error into EOF: a cut stream is what the test expects.
type tolerant struct{ r io.Reader }

func (t *tolerant) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil {
		err = io.EOF
	}
	return n, err
}

func TestShutdownLetsRequestsFinish(t *testing.T) {
	cfg := fast()
	cfg.DecodePerToken = 20 * time.Millisecond
	r, err := Start(context.Background(), "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	resp := post(context.Background(), t, c, r.URL+"/v1/completions", map[string]any{"prompt": "a", "max_tokens": 3, "stream": true})
	defer resp.Body.Close()
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	events := sseEvents(t, resp.Body)
	if events[len(events)-1] != "[DONE]" {
		t.Fatalf("graceful shutdown cut the stream: %q", events)
	}
	if _, err := c.Get(r.URL + "/health"); err == nil {
		t.Fatal("server still accepts after shutdown")
	}
}

func TestStartContextCancelCloses(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r, err := Start(ctx, "127.0.0.1:0", fast())
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	<-r.done
	if err := r.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{{MaxBatch: -1}, {TimeScale: -2}, {DecodePerToken: -time.Second}} {
		if _, err := Start(context.Background(), "127.0.0.1:0", cfg); err == nil || !strings.HasPrefix(err.Error(), "sim: ") {
			t.Errorf("config %+v: err %v, want a sim: error", cfg, err)
		}
	}
}

func TestServerCloseAnswers503(t *testing.T) {
	s := New(slow(1))
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	c := ts.Client()
	defer c.Transport.(*http.Transport).CloseIdleConnections()

	type answer struct {
		status int
		e      errorBody
	}
	answers := make(chan answer, 2)
	for i := range 2 { // one running (in decode), one queued
		go func() {
			resp := post(context.Background(), t, c, ts.URL+"/v1/completions", map[string]any{"prompt": strconv.Itoa(i), "max_tokens": 2})
			defer resp.Body.Close()
			var a answer
			a.status = resp.StatusCode
			_ = json.NewDecoder(resp.Body).Decode(&a.e)
			answers <- a
		}()
	}
	eventually(t, "one running and one queued", func() bool {
		st := s.Stats()
		return st.Running == 1 && st.Waiting == 1
	})
	s.Close()
	for range 2 {
		if a := <-answers; a.status != http.StatusServiceUnavailable || a.e.Error.Code != 503 {
			t.Fatalf("after Close: %+v, want 503", a)
		}
	}
	resp := post(context.Background(), t, c, ts.URL+"/v1/completions", map[string]any{"prompt": "late"})
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("request after Close: %d, want 503", resp.StatusCode)
	}
}
