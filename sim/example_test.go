package sim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/kvgate/kvgate/sim"
)

// Start a simulator on a free loopback port and watch the prefix cache
// serve the second of two identical prompts.
func ExampleStart() {
	r, err := sim.Start(context.Background(), "127.0.0.1:0", sim.Config{Model: "demo"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	prompt := strings.Repeat("You are a helpful assistant. ", 10) // 290 bytes = 73 tokens
	body := fmt.Sprintf(`{"model":"demo","prompt":%q,"max_tokens":4}`, prompt)
	for range 2 {
		resp, err := http.Post(r.URL+"/v1/completions", "application/json", strings.NewReader(body))
		if err != nil {
			fmt.Println(err)
			return
		}
		var out struct {
			Usage struct {
				PromptTokens        int `json:"prompt_tokens"`
				PromptTokensDetails struct {
					CachedTokens int `json:"cached_tokens"`
				} `json:"prompt_tokens_details"`
			} `json:"usage"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		fmt.Println(out.Usage.PromptTokens, out.Usage.PromptTokensDetails.CachedTokens)
	}
	st := r.Server.Stats()
	fmt.Println(st.PrefixQueryTokens, st.PrefixHitTokens)
	http.DefaultClient.CloseIdleConnections()
	// Output:
	// 73 0
	// 73 64
	// 146 64
}

// Serve the simulator from any HTTP server through its Handler.
func ExampleServer_Handler() {
	s := sim.New(sim.Config{Model: "demo", NumGPUBlocks: 100})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	defer s.Close()

	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var buf strings.Builder
	_, _ = fmt.Fprint(&buf, resp.Header.Get("Content-Type"))
	fmt.Println(buf.String())
	http.DefaultClient.CloseIdleConnections()
	// Output: text/plain; version=0.0.4; charset=utf-8
}

func ExampleBlockHashes() {
	system := strings.Repeat("s", sim.BlockChars)
	a := sim.BlockHashes("demo", "", system+strings.Repeat("a", sim.BlockChars))
	b := sim.BlockHashes("demo", "", system+strings.Repeat("b", sim.BlockChars))
	salted := sim.BlockHashes("demo", "tenant-1", system)
	fmt.Println(len(a), a[0] == b[0], a[1] == b[1], salted[0] == a[0])
	// Output: 2 true false false
}
