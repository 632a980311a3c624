package sim

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkRoundTrip measures one small non-streaming completion over a
// keep-alive loopback connection with every simulated delay at zero.
func BenchmarkRoundTrip(b *testing.B) {
	for _, tc := range []struct {
		name string
		body string
	}{
		{"completion", `{"model":"m","prompt":"` + strings.Repeat("hello ", 50) + `","max_tokens":8}`},
		{"chat-stream", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"max_tokens":8,"messages":[{"role":"user","content":"` + strings.Repeat("hello ", 50) + `"}]}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r, c := startSim(b, fast())
			path := "/v1/completions"
			if strings.HasPrefix(tc.name, "chat") {
				path = "/v1/chat/completions"
			}
			url := r.URL + path
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, url, strings.NewReader(tc.body))
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}

func BenchmarkBlockHashes(b *testing.B) {
	text := strings.Repeat("x", 16<<10) // 16 KiB: 256 blocks
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		_ = BlockHashes("m", "salt", text)
	}
}
