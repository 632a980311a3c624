package openai

import (
	"fmt"
	"testing"

	"github.com/kvgate/kvgate/internal/benchcpu"
)

func BenchmarkExtractChat(b *testing.B) {
	for _, size := range []int{8 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			body := []byte(chatBody(size))
			p := Prompt{Text: make([]byte, 0, len(body))}
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			clk := benchcpu.Start()
			for b.Loop() {
				if err := Extract("/v1/chat/completions", body, &p); err != nil {
					b.Fatal(err)
				}
			}
			clk.Stop(b)
		})
	}
}
