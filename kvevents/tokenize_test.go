package kvevents

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/kvgate/kvgate/sim"
)

func startTokenSim(t testing.TB, delay time.Duration) *sim.Running {
	r, err := sim.Start(context.Background(), "127.0.0.1:0", sim.Config{TokenizeDelay: delay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func TestTokenizerChatAndCache(t *testing.T) {
	r := startTokenSim(t, 0)
	tk := NewTokenizer(http.DefaultClient, "/tokenize", 5*time.Second, 4)
	body := []byte(`{"model":"sim-model","messages":[{"role":"user","content":"hello there, tokenizer"}],"max_tokens":3,"stream":true}`)
	got, err := tk.Tokens(context.Background(), r.URL, body)
	if err != nil {
		t.Fatal(err)
	}
	// The server applied its chat template, with the generation prompt.
	if want := sim.TokenIDs("<|user|>\nhello there, tokenizer<|end|>\n<|assistant|>\n"); !slices.Equal(got, want) {
		t.Fatalf("tokens %v, want %v", got, want)
	}
	if _, err := tk.Tokens(context.Background(), r.URL, body); err != nil {
		t.Fatal(err)
	}
	if st := tk.Stats(); st.Hits != 1 || st.Misses != 1 {
		t.Fatalf("stats %+v: want the second call from the cache", st)
	}
	// The same messages with other sampling options: the prompt key hits.
	other := []byte(`{"messages":[{"role":"user","content":"hello there, tokenizer"}],"model":"sim-model","temperature":0.2}`)
	if got2, err := tk.Tokens(context.Background(), r.URL, other); err != nil || !slices.Equal(got2, got) {
		t.Fatalf("other options: %v %v", got2, err)
	}
	if st := tk.Stats(); st.Hits != 2 || st.Misses != 1 {
		t.Fatalf("stats %+v: want the prompt key to hit", st)
	}
	// The cache is bounded (two keys per prompt): more prompts push the first out.
	for i := range 2 {
		if _, err := tk.Tokens(context.Background(), r.URL, fmt.Appendf(nil, `{"prompt":"p%d"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = tk.Tokens(context.Background(), r.URL, body)
	if st := tk.Stats(); st.Misses != 4 {
		t.Fatalf("stats %+v: the LRU kept more than its size", st)
	}
	if _, err := tk.Tokens(context.Background(), r.URL, []byte(`{"input":"x"}`)); !errors.Is(err, ErrNoPrompt) {
		t.Fatalf("err %v, want ErrNoPrompt", err)
	}
}

func TestTokenizerTimeout(t *testing.T) {
	r := startTokenSim(t, time.Minute)
	tk := NewTokenizer(http.DefaultClient, "/tokenize", 20*time.Millisecond, 16)
	_, err := tk.Tokens(context.Background(), r.URL, []byte(`{"prompt":"slow"}`))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want a deadline error", err)
	}
	if st := tk.Stats(); st.Failures != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// BenchmarkTokenize measures the tokenize call of precise mode over
// loopback against the simulator (an 8 KiB chat prompt): a miss is one
// HTTP round trip; a hit is the LRU lookup (the JSON read of the body
// and its hash included).
func BenchmarkTokenize(b *testing.B) {
	r := startTokenSim(b, 0)
	tk := NewTokenizer(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}, "/tokenize", 5*time.Second, 1<<20)
	text := make([]byte, 8<<10)
	for i := range text {
		text[i] = 'a' + byte(i%26)
	}
	body := func(i int) []byte {
		return fmt.Appendf(nil, `{"model":"sim-model","messages":[{"role":"user","content":"%d %s"}]}`, i, text)
	}
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := tk.Tokens(context.Background(), r.URL, body(i)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("hit", func(b *testing.B) {
		in := body(-1)
		_, _ = tk.Tokens(context.Background(), r.URL, in)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tk.Tokens(context.Background(), r.URL, in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
