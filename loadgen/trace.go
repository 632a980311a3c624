package loadgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// TraceBlockTokens is the number of tokens one Mooncake hash id stands for.
const TraceBlockTokens = 512

// Request is one line of a Mooncake-format trace.
type Request struct {
	// Timestamp is the arrival time in milliseconds from the start of the trace.
	Timestamp int64 `json:"timestamp"`
	// InputLength is the prompt length in tokens.
	InputLength int `json:"input_length"`
	// OutputLength is the number of tokens the request generated.
	OutputLength int `json:"output_length"`
	// HashIDs names each TraceBlockTokens-token block of the prompt; equal
	// ids mean equal blocks (with equal blocks before them).
	HashIDs []uint64 `json:"hash_ids"`
	// Session, when set, is the request's conversation for session-affinity
	// pickers (generated workloads set it; for a trace SessionKeys derives
	// one from the hash ids).
	Session string `json:"session,omitempty"`
}

// maxLine bounds one trace line (a 1M-token prompt has about 2,000 ids).
const maxLine = 4 << 20

// ReadTrace decodes JSON Lines from r. It stops after limit requests when
// limit > 0. Blank lines are skipped; a line that is not a valid request is
// an error naming its line number. Timestamps must not decrease.
func ReadTrace(r io.Reader, limit int) ([]Request, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var out []Request
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		req, err := parseLine(b)
		if err != nil {
			return nil, fmt.Errorf("loadgen: trace line %d: %w", line, err)
		}
		if n := len(out); n > 0 && req.Timestamp < out[n-1].Timestamp {
			return nil, fmt.Errorf("loadgen: trace line %d: timestamp %d is before the previous one (%d); sort the trace by timestamp", line, req.Timestamp, out[n-1].Timestamp)
		}
		out = append(out, req)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("loadgen: read trace after line %d: %w", line, err)
	}
	return out, nil
}

func parseLine(b []byte) (Request, error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("not a trace request (want timestamp, input_length, output_length, hash_ids): %w", err)
	}
	if dec.More() {
		return req, errors.New("more than one JSON value on the line; write one request per line")
	}
	switch {
	case req.Timestamp < 0:
		return req, errors.New("timestamp is negative")
	case req.InputLength <= 0:
		return req, errors.New("input_length must be at least 1")
	case req.OutputLength < 0:
		return req, errors.New("output_length is negative")
	case len(req.HashIDs) == 0:
		return req, errors.New("hash_ids is empty")
	case (req.InputLength+TraceBlockTokens-1)/TraceBlockTokens > len(req.HashIDs):
		return req, fmt.Errorf("input_length %d needs %d hash ids of %d tokens, the line has %d",
			req.InputLength, (req.InputLength+TraceBlockTokens-1)/TraceBlockTokens, TraceBlockTokens, len(req.HashIDs))
	}
	return req, nil
}

// LoadTrace reads up to limit requests (all when limit <= 0) from a file.
func LoadTrace(path string, limit int) ([]Request, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loadgen: open trace: %w; pass --trace with the path of a Mooncake JSONL file", err)
	}
	defer f.Close()
	return ReadTrace(f, limit)
}

// SessionKeys gives each request a conversation id for session-affinity
// pickers: its hash ids up to and including the first one that is not hot,
// a hot id being one found at its position in more than hotShare of the
// requests. Leading blocks shared that widely (a system prompt in front of
// every conversation) do not identify a conversation; the first block after
// them does. hotShare is a fraction in [0, 1]: 1 makes the first id the key,
// 0 the whole list; 0.05 is a reasonable value.
func SessionKeys(reqs []Request, hotShare float64) []string {
	type pos struct {
		i  int
		id uint64
	}
	count := map[pos]int{}
	for _, r := range reqs {
		for i, id := range r.HashIDs {
			count[pos{i, id}]++
		}
	}
	hot := hotShare * float64(len(reqs))
	keys := make([]string, len(reqs))
	for n, r := range reqs {
		var b []byte
		for i, id := range r.HashIDs {
			if i > 0 {
				b = append(b, '-')
			}
			b = strconv.AppendUint(b, id, 10)
			if float64(count[pos{i, id}]) <= hot {
				break
			}
		}
		keys[n] = string(b)
	}
	return keys
}
