package pick

import (
	"math"
	"slices"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	tests := []struct {
		name string
		text string
		want ServerMetrics
	}{
		{
			name: "vllm",
			text: `# HELP vllm:num_requests_waiting Number of requests waiting.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="m"} 3
vllm:num_requests_running{model_name="m"} 7.0
vllm:gpu_cache_usage_perc{model_name="m"} 0.9
vllm:kv_cache_usage_perc{model_name="m"} 0.25
vllm:cache_config_info{block_size="16",num_gpu_blocks="2048"} 1
vllm:lora_requests_info{max_lora="4",running_lora_adapters="a,b",waiting_lora_adapters=""} 1.7e9
vllm:lora_requests_info{max_lora="4",running_lora_adapters="old",waiting_lora_adapters="x"} 1.6e9
`,
			want: ServerMetrics{Waiting: 3, Running: 7, KV: 0.25, HasKV: true, NumGPUBlocks: 2048, BlockSize: 16,
				LoRA: LoRAInfo{Running: []string{"a", "b"}, Max: 4}, HasLoRA: true},
		},
		{
			name: "vllm older KV name only, two models summed",
			text: "vllm:gpu_cache_usage_perc 0.5\nvllm:num_requests_waiting{model_name=\"a\"} 1\nvllm:num_requests_waiting{model_name=\"b\"} 2 1712000000000\n",
			want: ServerMetrics{Waiting: 3, KV: 0.5, HasKV: true},
		},
		{
			name: "sglang",
			text: "sglang:num_queue_reqs{name=\"x\"} 4\nsglang:num_running_reqs{name=\"x\"} 2\nsglang:token_usage{name=\"x\"} 0.6\n",
			want: ServerMetrics{Waiting: 4, Running: 2, KV: 0.6, HasKV: true},
		},
		{
			name: "tgi",
			text: "tgi_queue_size 9\ntgi_batch_current_size 12\ntgi_request_count 100\n",
			want: ServerMetrics{Waiting: 9, Running: 12},
		},
		{
			name: "llama.cpp",
			text: "llamacpp:requests_processing 1\r\nllamacpp:requests_deferred 2\r\nllamacpp:kv_cache_usage_ratio 0.125\r\n# EOF\n",
			want: ServerMetrics{Waiting: 2, Running: 1, KV: 0.125, HasKV: true},
		},
		{
			name: "escaped labels and special values",
			text: "other{a=\"x\\\"y\\\\z\\n\",b=\"}\"} +Inf\nvllm:num_requests_waiting NaN\nvllm:num_requests_running -3\n",
			want: ServerMetrics{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got ServerMetrics
			if err := ParseMetrics([]byte(tt.text), &got); err != nil {
				t.Fatal(err)
			}
			if got.Waiting != tt.want.Waiting || got.Running != tt.want.Running || got.HasKV != tt.want.HasKV ||
				got.KV != tt.want.KV || got.NumGPUBlocks != tt.want.NumGPUBlocks || got.BlockSize != tt.want.BlockSize ||
				got.HasLoRA != tt.want.HasLoRA || got.LoRA.Max != tt.want.LoRA.Max ||
				!slices.Equal(got.LoRA.Running, tt.want.LoRA.Running) || !slices.Equal(got.LoRA.Waiting, tt.want.LoRA.Waiting) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseMetricsErrors(t *testing.T) {
	for _, text := range []string{
		"vllm:num_requests_waiting\n",
		"vllm:num_requests_waiting abc\n",
		"vllm:num_requests_waiting{a=\"1\" 3\n",
		"vllm:num_requests_waiting{a=1} 3\n",
		"{a=\"1\"} 3\n",
		"vllm:num_requests_waiting{a=\"1\"}3\n",
		"<html>oops</html>\n",
	} {
		var m ServerMetrics
		if err := ParseMetrics([]byte(text), &m); err == nil {
			t.Errorf("%q: no error", text)
		}
	}
}

func TestLabelValue(t *testing.T) {
	labels := []byte(`a="1", b="x\"y" ,c=""`)
	for _, tt := range []struct {
		key, want string
		ok        bool
	}{{"a", "1", true}, {"b", `x"y`, true}, {"c", "", true}, {"d", "", false}} {
		if got, ok := labelValue(labels, tt.key); got != tt.want || ok != tt.ok {
			t.Errorf("labelValue(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzParseMetrics checks that the parser never panics, that a page it
// accepts yields finite, non-negative queue figures, and that every accepted
// sample line is accepted again on its own.
func FuzzParseMetrics(f *testing.F) {
	f.Add([]byte("vllm:num_requests_waiting{model_name=\"m\"} 3\nvllm:kv_cache_usage_perc 0.5\n"))
	f.Add([]byte("vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"a,b\",waiting_lora_adapters=\"\"} 1\n"))
	f.Add([]byte("# TYPE x gauge\nx{a=\"\\\"\"} +Inf 123\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		var m ServerMetrics
		if err := ParseMetrics(text, &m); err != nil {
			return
		}
		if m.Waiting < 0 || m.Running < 0 || math.IsNaN(m.Waiting) {
			t.Fatalf("negative or NaN queue figures: %+v", m)
		}
		n := 0
		if err := scanText(text, func(name, labels []byte, v float64) { n++ }); err != nil {
			t.Fatalf("ParseMetrics accepted what scanText rejects: %v", err)
		}
	})
}
