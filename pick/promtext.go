package pick

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ServerMetrics is the load a model server reports on its metrics page, in
// the names of vLLM, SGLang, TGI, llama.cpp and Triton (see ParseMetrics).
// A ServerMetrics may be reused: ParseMetrics resets it.
type ServerMetrics struct {
	// Waiting is the server's queue depth; Running its batch size. Series of
	// the same name (one per model, say) are summed.
	Waiting, Running float64
	// KV is the KV-cache utilisation in [0,1] (the largest series); HasKV
	// reports whether the server exposes one.
	KV    float64
	HasKV bool
	// NumGPUBlocks and BlockSize come from vllm:cache_config_info; 0 unknown.
	NumGPUBlocks, BlockSize int
	// LoRA comes from vllm:lora_requests_info (the newest series); HasLoRA
	// reports whether it was present.
	LoRA    LoRAInfo
	HasLoRA bool

	kvPrio  int     // which KV family set KV: newer vLLM names win over older ones
	loraVal float64 // value of the lora series kept (vLLM writes a timestamp)
}

// metric families, by role. Names are disjoint across servers, so one parser
// reads any of them whatever inference.modelServer says.
const (
	roleNone = iota
	roleWaiting
	roleRunning
	roleKV     // in [0,1]
	roleKVOld  // older vLLM name; loses to roleKV
	roleConfig // vllm:cache_config_info
	roleLoRA   // vllm:lora_requests_info
)

func roleOf(name []byte) int {
	switch string(name) {
	case "vllm:num_requests_waiting", "sglang:num_queue_reqs", "tgi_queue_size",
		"llamacpp:requests_deferred", "nv_inference_pending_request_count":
		return roleWaiting
	case "vllm:num_requests_running", "sglang:num_running_reqs", "tgi_batch_current_size",
		"llamacpp:requests_processing":
		return roleRunning
	case "vllm:kv_cache_usage_perc", "sglang:token_usage", "llamacpp:kv_cache_usage_ratio":
		return roleKV
	case "vllm:gpu_cache_usage_perc":
		return roleKVOld
	case "vllm:cache_config_info":
		return roleConfig
	case "vllm:lora_requests_info":
		return roleLoRA
	}
	return roleNone
}

// ParseMetrics reads a Prometheus text exposition (version 0.0.4, or
// OpenMetrics text) into dst. It recognises:
//
//   - vLLM: vllm:num_requests_waiting, vllm:num_requests_running,
//     vllm:kv_cache_usage_perc (older vllm:gpu_cache_usage_perc),
//     vllm:cache_config_info{num_gpu_blocks,block_size},
//     vllm:lora_requests_info{running_lora_adapters,waiting_lora_adapters,max_lora};
//   - SGLang: sglang:num_queue_reqs, sglang:num_running_reqs, sglang:token_usage;
//   - TGI: tgi_queue_size, tgi_batch_current_size (no KV figure);
//   - llama.cpp: llamacpp:requests_deferred, llamacpp:requests_processing,
//     llamacpp:kv_cache_usage_ratio;
//   - Triton: nv_inference_pending_request_count.
//
// Other series are skipped. A malformed line is an error naming its line
// number; dst then holds what was read before it and must not be stored.
func ParseMetrics(text []byte, dst *ServerMetrics) error {
	lora := dst.LoRA
	*dst = ServerMetrics{LoRA: LoRAInfo{Running: lora.Running[:0], Waiting: lora.Waiting[:0]}}
	return scanText(text, func(name, labels []byte, v float64) {
		dst.add(roleOf(name), labels, v)
	})
}

func (m *ServerMetrics) add(role int, labels []byte, v float64) {
	switch role {
	case roleWaiting:
		m.Waiting += nonNeg(v)
	case roleRunning:
		m.Running += nonNeg(v)
	case roleKV, roleKVOld:
		prio := 2
		if role == roleKVOld {
			prio = 1
		}
		if v != v { // NaN
			return
		}
		if prio > m.kvPrio || prio == m.kvPrio && v > m.KV {
			m.KV, m.HasKV, m.kvPrio = v, true, prio
		}
	case roleConfig:
		if n, ok := labelInt(labels, "num_gpu_blocks"); ok {
			m.NumGPUBlocks = n
		}
		if n, ok := labelInt(labels, "block_size"); ok {
			m.BlockSize = n
		}
	case roleLoRA:
		if m.HasLoRA && v < m.loraVal {
			return
		}
		m.HasLoRA, m.loraVal = true, v
		m.LoRA.Running = splitAdapters(m.LoRA.Running[:0], labels, "running_lora_adapters")
		m.LoRA.Waiting = splitAdapters(m.LoRA.Waiting[:0], labels, "waiting_lora_adapters")
		m.LoRA.Max, _ = labelInt(labels, "max_lora")
	}
}

func nonNeg(v float64) float64 {
	if v > 0 {
		return v
	}
	return 0
}

func labelInt(labels []byte, key string) (int, bool) {
	v, ok := labelValue(labels, key)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1<<40 {
		return 0, false
	}
	return int(f), true
}

func splitAdapters(dst []string, labels []byte, key string) []string {
	v, ok := labelValue(labels, key)
	if !ok {
		return dst
	}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			dst = append(dst, s)
		}
	}
	return dst
}

var errMetricsLine = errors.New("pick: malformed metrics line")

// scanText calls fn for every sample of a Prometheus text exposition: the
// metric name, the raw label block (between the braces, escapes kept; nil
// when absent) and the value. Comments (# HELP, # TYPE, # EOF) and blank
// lines are skipped; a timestamp after the value is ignored. The slices
// alias text and are valid only during the call. It stops at the first
// malformed line with an error naming it.
func scanText(text []byte, fn func(name, labels []byte, value float64)) error {
	for line := 1; len(text) > 0; line++ {
		var l []byte
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			l, text = text[:i], text[i+1:]
		} else {
			l, text = text, nil
		}
		l = bytes.TrimRight(l, "\r")
		l = trimSpace(l)
		if len(l) == 0 || l[0] == '#' {
			continue
		}
		name, labels, v, err := parseSample(l)
		if err != nil {
			return fmt.Errorf("%w %d: %v (the server's metrics page is not Prometheus text; check inference.metricsPath)", errMetricsLine, line, err)
		}
		fn(name, labels, v)
	}
	return nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func isNameByte(c byte, first bool) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
}

func parseSample(l []byte) (name, labels []byte, v float64, err error) {
	i := 0
	for i < len(l) && isNameByte(l[i], i == 0) {
		i++
	}
	if i == 0 {
		return nil, nil, 0, errors.New("no metric name")
	}
	name = l[:i]
	if i < len(l) && l[i] == '{' {
		end, err := labelsEnd(l, i+1)
		if err != nil {
			return nil, nil, 0, err
		}
		labels = l[i+1 : end]
		i = end + 1
	}
	rest := trimSpace(l[i:])
	if len(rest) == 0 || i < len(l) && l[i] != ' ' && l[i] != '\t' {
		return nil, nil, 0, errors.New("no value after the name")
	}
	if j := bytes.IndexAny(rest, " \t"); j >= 0 {
		rest = rest[:j] // drop the timestamp
	}
	v, err = parseValue(rest)
	return name, labels, v, err
}

func parseValue(b []byte) (float64, error) {
	switch string(b) {
	case "+Inf", "Inf":
		return posInf, nil
	case "-Inf":
		return -posInf, nil
	case "NaN":
		return nan, nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return 0, errors.New("value is not a number")
	}
	return v, nil
}

var (
	posInf = 1 / zero
	nan    = zero / zero
	zero   float64
)

// labelsEnd checks a label block starting at i (after '{') and returns the
// index of its closing '}'.
func labelsEnd(l []byte, i int) (int, error) {
	for {
		for i < len(l) && (l[i] == ' ' || l[i] == '\t') {
			i++
		}
		if i < len(l) && l[i] == '}' {
			return i, nil
		}
		k := i
		for i < len(l) && isNameByte(l[i], i == k) {
			i++
		}
		if i == k {
			return 0, errors.New("bad label name")
		}
		if i+1 >= len(l) || l[i] != '=' || l[i+1] != '"' {
			return 0, errors.New(`label name must be followed by ="`)
		}
		i += 2
		for ; i < len(l) && l[i] != '"'; i++ {
			if l[i] == '\\' {
				i++
			}
		}
		if i >= len(l) {
			return 0, errors.New("unterminated label value")
		}
		i++
		for i < len(l) && (l[i] == ' ' || l[i] == '\t') {
			i++
		}
		if i < len(l) && l[i] == ',' {
			i++
			continue
		}
		if i < len(l) && l[i] == '}' {
			return i, nil
		}
		return 0, errors.New("expected , or } after a label")
	}
}

// labelValue returns the unescaped value of label key in a raw label block
// as scanText passes it. It allocates the returned string.
func labelValue(labels []byte, key string) (string, bool) {
	i := 0
	for i < len(labels) {
		for i < len(labels) && (labels[i] == ' ' || labels[i] == '\t' || labels[i] == ',') {
			i++
		}
		k := i
		for i < len(labels) && labels[i] != '=' {
			i++
		}
		name := labels[k:i]
		i += 2 // ="
		if i > len(labels) {
			return "", false
		}
		start := i
		esc := false
		for ; i < len(labels) && labels[i] != '"'; i++ {
			if labels[i] == '\\' {
				esc = true
				i++
			}
		}
		if i > len(labels) {
			i = len(labels)
		}
		if string(name) == key {
			return unescapeLabel(labels[start:i], esc), true
		}
		i++
	}
	return "", false
}

func unescapeLabel(raw []byte, esc bool) string {
	if !esc {
		return string(raw)
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '\\' && i+1 < len(raw) {
			i++
			switch raw[i] {
			case 'n':
				c = '\n'
			default:
				c = raw[i]
			}
		}
		out = append(out, c)
	}
	return string(out)
}
