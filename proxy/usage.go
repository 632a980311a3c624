package proxy

import (
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kvgate/kvgate/openai"
	"github.com/kvgate/kvgate/pick"
)

// This file reads token usage from OpenAI-shaped responses as they stream
// back (openai.UsageScanner), for the access log, the GenAI metrics
// (metrics_genai.go) and the request's span. The body passes through unchanged and unbuffered: the
// scanner looks at each chunk after the upstream read returned it and
// before the engine writes it, and keeps only its own bounded state.

// usageReader is a reply body that feeds what it reads to a UsageScanner.
// It also notes when the first body byte arrived: the request's time to
// first token as the proxy sees it.
type usageReader struct {
	r     io.Reader
	s     openai.UsageScanner
	start time.Time     // the request's start (Exchange.start)
	ttft  time.Duration // start to the first body byte read; 0 until then
	sse   bool          // the body is an event stream: its first byte is the first token
}

func (u *usageReader) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	if n > 0 {
		if u.ttft == 0 {
			u.ttft = max(time.Since(u.start), 1)
		}
		u.s.Scan(p[:n])
	}
	return n, err
}

var usageReaders = sync.Pool{New: func() any { return new(usageReader) }}

// watchUsage wraps the body of a successful upstream reply to an OpenAI
// endpoint in a usageReader. Other replies are left alone.
func watchUsage(x *Exchange, r *Reply) {
	if r != &x.reply || x.up == nil || r.Body == nil || r.Status < 200 || r.Status > 299 || !openai.ReportsUsage(x.path) {
		return
	}
	mode := openai.UsageOff
	for _, f := range r.Header {
		switch {
		case strings.EqualFold(f.Name, "content-type"):
			mode = openai.UsageModeOf(f.Value)
		case strings.EqualFold(f.Name, "content-encoding") && !strings.EqualFold(f.Value, "identity"):
			return // compressed: the usage cannot be read without inflating
		}
	}
	if mode == openai.UsageOff {
		return
	}
	u := usageReaders.Get().(*usageReader)
	u.r = r.Body
	u.start = x.start
	u.ttft = 0
	u.sse = mode == openai.UsageSSE
	u.s.Reset(mode)
	x.usage = u
	r.Body = u
}

// endUsage takes the usage found, if any, into x.tokens and counts it.
// Exchange.finish calls it once, before metrics and the access log.
func (x *Exchange) endUsage() {
	u := x.usage
	if u == nil {
		return
	}
	x.usage = nil
	x.tokens, x.hasTokens = u.s.Usage()
	x.ttft = u.ttft
	x.ttftStream = u.sse
	u.r = nil
	usageReaders.Put(u)
}

// appendTokens adds the access log's token fields.
func appendTokens(b []byte, x *Exchange) []byte {
	b = append(b, `,"prompt_tokens":`...)
	b = strconv.AppendInt(b, x.tokens.Prompt, 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, x.tokens.Completion, 10)
	b = append(b, `,"cached_tokens":`...)
	return strconv.AppendInt(b, x.tokens.Cached, 10)
}

// observeOutcome reports a finished try's outcome to its endpoint
// (pick.Endpoint.Observe): what the picker learns from and the status page
// shows; d is the request's duration. Only replies the usage reader watched are reported, so the
// endpoint's latencies are those of model requests, not of health checks.
func (x *Exchange) observeOutcome(status int, d time.Duration) {
	if x.ep == nil || x.ttft == 0 {
		return
	}
	o := pick.Outcome{
		TTFT: x.ttft, Duration: d, Status: status, Streamed: x.ttftStream,
		PromptTokens: int(x.tokens.Prompt), CachedTokens: int(x.tokens.Cached), CompletionTokens: int(x.tokens.Completion),
	}
	if x.rt.retries == 0 { // a retry's endpoint was chosen by the balancer, not predicted
		o.Predicted = x.inf.pred
	}
	x.ep.state.Observe(o)
}
