package sim

import (
	"errors"
	"fmt"
	"time"
)

// Stand-in tokenizer and cache geometry; see the package comment.
const (
	// CharsPerToken is how many bytes of text count as one token.
	CharsPerToken = 4
	// BlockTokens is the number of tokens per cache block (vLLM's block_size).
	BlockTokens = 16
	// BlockChars is the number of text bytes per cache block.
	BlockChars = BlockTokens * CharsPerToken
)

// Config describes one simulated model server. The zero value of a count
// field means its default; the zero value of a duration means instantaneous.
// Config is a plain value: copy it freely.
type Config struct {
	// Model is the served model name; "" means "sim-model". Requests naming
	// another model get 404; requests naming none are served.
	Model string
	// NumGPUBlocks is the KV pool size in blocks of 16 tokens; 0 means 4096.
	NumGPUBlocks int
	// MaxBatch is how many requests may run at once; 0 means 16.
	MaxBatch int
	// DefaultMaxTokens is the output length when a request sets none; 0 means 16.
	DefaultMaxTokens int
	// TokensPerEvent is how many output tokens one SSE event carries; 0 means 1.
	TokensPerEvent int
	// MaxBodyBytes bounds a request body; 0 means 32 MiB.
	MaxBodyBytes int64

	// PrefillBase is the fixed cost of a prefill step.
	PrefillBase time.Duration
	// PrefillPerToken is the cost of each uncached prompt token.
	PrefillPerToken time.Duration
	// DecodePerToken is the cost of each output token after the first.
	DecodePerToken time.Duration
	// DecodePerRunning is added to DecodePerToken for every other running request.
	DecodePerRunning time.Duration
	// TimeScale multiplies every duration above; 0 means 1. Tests use small
	// values such as 0.001 to run fast with realistic ratios.
	TimeScale float64

	// TokenizeDelay is how long POST /tokenize takes to answer; it is not
	// multiplied by TimeScale (tests use it to make a tokenizer slow).
	TokenizeDelay time.Duration

	// KVEvents publishes the prefix cache's changes in vLLM's KV event wire
	// format when KVEvents.Endpoint is set; Start opens the sockets.
	KVEvents KVEventsConfig

	// StopEarly makes requests without ignore_eos stop at a deterministic
	// length in 1..max_tokens (finish_reason "stop"). When false every
	// request produces exactly max_tokens tokens (finish_reason "length").
	StopEarly bool
}

// DefaultConfig returns a Config with timings of the order of an 8B model on
// one modern GPU: about 20k prefill tokens/s and 100 decode tokens/s alone.
func DefaultConfig() Config {
	return Config{
		Model:            "sim-model",
		NumGPUBlocks:     4096,
		MaxBatch:         16,
		DefaultMaxTokens: 16,
		TokensPerEvent:   1,
		PrefillBase:      2 * time.Millisecond,
		PrefillPerToken:  50 * time.Microsecond,
		DecodePerToken:   10 * time.Millisecond,
		DecodePerRunning: 200 * time.Microsecond,
		TimeScale:        1,
	}
}

// Validate reports every invalid field of c at once. Zero values are valid.
func (c Config) Validate() error {
	var errs []error
	neg := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("sim: %s is %d; set it to 0 (default) or more", name, v))
		}
	}
	neg("NumGPUBlocks", int64(c.NumGPUBlocks))
	neg("MaxBatch", int64(c.MaxBatch))
	neg("DefaultMaxTokens", int64(c.DefaultMaxTokens))
	neg("TokensPerEvent", int64(c.TokensPerEvent))
	neg("MaxBodyBytes", c.MaxBodyBytes)
	for name, d := range map[string]time.Duration{
		"PrefillBase": c.PrefillBase, "PrefillPerToken": c.PrefillPerToken,
		"DecodePerToken": c.DecodePerToken, "DecodePerRunning": c.DecodePerRunning,
		"TokenizeDelay": c.TokenizeDelay,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("sim: %s is %v; durations must be 0 or more", name, d))
		}
	}
	neg("KVEvents.BufferSteps", int64(c.KVEvents.BufferSteps))
	if c.KVEvents.Replay != "" && c.KVEvents.Endpoint == "" {
		errs = append(errs, fmt.Errorf("sim: KVEvents.Replay is set without KVEvents.Endpoint; set both or neither"))
	}
	if c.TimeScale < 0 || c.TimeScale != c.TimeScale {
		errs = append(errs, fmt.Errorf("sim: TimeScale is %v; set it to 0 (means 1) or a positive factor", c.TimeScale))
	}
	return errors.Join(errs...)
}

// withDefaults fills zero count fields and applies TimeScale to durations.
func (c Config) withDefaults() Config {
	def := DefaultConfig()
	if c.Model == "" {
		c.Model = def.Model
	}
	if c.NumGPUBlocks == 0 {
		c.NumGPUBlocks = def.NumGPUBlocks
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = def.MaxBatch
	}
	if c.DefaultMaxTokens == 0 {
		c.DefaultMaxTokens = def.DefaultMaxTokens
	}
	if c.TokensPerEvent == 0 {
		c.TokensPerEvent = def.TokensPerEvent
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 32 << 20
	}
	if c.TimeScale == 0 {
		c.TimeScale = 1
	}
	return c
}

// scaled returns d multiplied by the time scale.
func (c Config) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * c.TimeScale)
}
