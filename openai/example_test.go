package openai_test

import (
	"fmt"

	"github.com/kvgate/kvgate/openai"
)

func ExampleExtract() {
	body := []byte(`{"messages":[{"role":"system","content":"Be brief."},` +
		`{"role":"user","content":[{"type":"text","text":"What is a KV cache?"}]}],` +
		`"cache_salt":"tenant-a","model":"llama-3-8b"}`)
	var p openai.Prompt // reuse one per worker, or take it from a sync.Pool
	if err := openai.Extract("/v1/chat/completions", body, &p); err != nil {
		fmt.Println("fallback:", err)
		return
	}
	fmt.Printf("model=%s salt=%s truncated=%v\n%s", p.Model, p.CacheSalt, p.Truncated, p.Text)
	// Output:
	// model=llama-3-8b salt=tenant-a truncated=false
	// system: Be brief.
	// user: What is a KV cache?
}

func ExampleModel() {
	fmt.Println(openai.Model([]byte(`{"messages":[{"role":"user","content":"hi"}],"model":"sql-lora"}`)))
	// Output: sql-lora
}

func ExampleRewriteModel() {
	body := []byte(`{"messages":[{"role":"user","content":"say \"model\""}],"model":"llama-3-8b","stream":true}`)
	out, ok := openai.RewriteModel(body, "llama-3-70b")
	fmt.Println(ok, string(out))
	// Output:
	// true {"messages":[{"role":"user","content":"say \"model\""}],"model":"llama-3-70b","stream":true}
}
