package sim

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// metrics writes the Prometheus text exposition with vLLM's metric names.
func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	st := s.Stats()
	var b bytes.Buffer
	m := `{model_name="` + escapeLabel(s.cfg.Model) + `"}`
	gauge := func(name, help string, v float64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s%s %s\n", name, help, name, name, m, formatFloat(v))
	}
	counter := func(name, help string, v uint64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s counter\n%s%s %d\n", name, help, name, name, m, v)
	}
	gauge("vllm:num_requests_running", "Number of requests in model execution batches.", float64(st.Running))
	gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", float64(st.Waiting))
	gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", st.KVCacheUsage)
	gauge("vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage (older name).", st.KVCacheUsage)
	counter("vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens.", st.PrefixQueryTokens)
	counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.", st.PrefixHitTokens)
	counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.", st.PromptTokens)
	counter("vllm:generation_tokens_total", "Number of generation tokens processed.", st.GenerationTokens)

	b.WriteString("# HELP vllm:request_success_total Count of successfully processed requests.\n# TYPE vllm:request_success_total counter\n")
	model := escapeLabel(s.cfg.Model)
	fmt.Fprintf(&b, "vllm:request_success_total{finished_reason=\"length\",model_name=\"%s\"} %d\n", model, st.SucceededLength)
	fmt.Fprintf(&b, "vllm:request_success_total{finished_reason=\"stop\",model_name=\"%s\"} %d\n", model, st.SucceededStop)

	b.WriteString("# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig.\n# TYPE vllm:cache_config_info gauge\n")
	fmt.Fprintf(&b, "vllm:cache_config_info{block_size=\"%d\",num_gpu_blocks=\"%d\"} 1\n", BlockTokens, st.NumGPUBlocks)
	b.WriteString("# HELP vllm:lora_requests_info Running stats on lora requests.\n# TYPE vllm:lora_requests_info gauge\n")
	b.WriteString("vllm:lora_requests_info{running_lora_adapters=\"\",waiting_lora_adapters=\"\",max_lora=\"0\"} 1\n")

	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	_, _ = w.Write(b.Bytes())
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
