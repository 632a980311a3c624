package openai

import (
	"bytes"
	"strings"
)

// This file reads token usage out of OpenAI-shaped response bodies while
// they stream through the proxy. The scanner sees each chunk once, after
// the caller has read it, and keeps no copy of the body: its whole memory
// is a small JSON structure tracker plus the bytes of the one `usage`
// object it is reading (at most maxUsageBytes). That is both cheaper and
// more exact than keeping a tail window and searching it: it finds `usage`
// only where the API puts it (a key of the top-level object, or of the
// top-level `response` object in Responses API events), never inside a
// string or a nested object, however large the body.
//
// The tracker is not a second JSON parser: a body arrives in chunks cut
// anywhere, so it is a byte-at-a-time state machine that follows only
// strings, brackets and the keys of the levels where usage may be, and
// checks nothing else. The usage object it captures is complete and small;
// parseUsage reads it with the package's one scanner (scan.go).

// Usage is the token accounting a response reports. Fields are 0 when the
// response did not say.
type Usage struct {
	// Prompt is prompt_tokens (Responses API: input_tokens).
	Prompt int64
	// Completion is completion_tokens (Responses API: output_tokens).
	Completion int64
	// Total is total_tokens.
	Total int64
	// Cached is prompt_tokens_details.cached_tokens (Responses API:
	// input_tokens_details.cached_tokens): prompt tokens served from the KV cache.
	Cached int64
}

// UsageMode says how a body is framed.
type UsageMode uint8

const (
	// UsageOff scans nothing; Scan is a no-op.
	UsageOff UsageMode = iota
	// UsageJSON is one JSON object (a non-streaming response).
	UsageJSON
	// UsageSSE is text/event-stream: `data: {json}` events separated by blank
	// lines. The last event that carries a usage object wins, which is the
	// cumulative count for servers that report usage on every chunk.
	UsageSSE
)

// usagePaths are the endpoints whose responses carry a usage object.
var usagePaths = [...]string{"/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/embeddings"}

// ReportsUsage reports whether a response to a request for path carries a
// usage object: path ends in /v1/chat/completions, /v1/completions,
// /v1/responses or /v1/embeddings.
func ReportsUsage(path string) bool {
	for _, s := range usagePaths {
		if strings.HasSuffix(path, s) {
			return true
		}
	}
	return false
}

// UsageModeOf says how a response body with the given Content-Type is
// framed: UsageSSE for text/event-stream, UsageJSON for application/json
// (parameters and case ignored), UsageOff for anything else.
func UsageModeOf(contentType string) UsageMode {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(mt)
	switch {
	case strings.EqualFold(mt, "text/event-stream"):
		return UsageSSE
	case strings.EqualFold(mt, "application/json"):
		return UsageJSON
	}
	return UsageOff
}

// maxUsageBytes bounds the usage object kept while it is read (whitespace
// outside strings is not kept). OpenAI's largest usage objects, with every
// *_details field, are about 350 bytes; a larger one is ignored.
const maxUsageBytes = 1024

// UsageScanner finds the usage object in a response body fed to it chunk by
// chunk. The zero value scans nothing; call Reset with a mode first. It is
// not safe for concurrent use; it does not allocate.
type UsageScanner struct {
	mode  UsageMode
	usage Usage
	found bool

	// SSE line state.
	line   uint8 // sseLineStart, sseField, sseSpace, sseData, sseSkip
	field  uint8 // bytes of "data:" matched so far
	lastCR bool  // previous byte was '\r': a following '\n' ends no new line

	j   jsonTracker
	cap [maxUsageBytes]byte // the usage object being read; outside j so that an event reset stays small
}

// Reset prepares s for a new body in mode m.
func (s *UsageScanner) Reset(m UsageMode) {
	s.mode, s.usage, s.found = m, Usage{}, false
	s.line, s.field, s.lastCR = sseLineStart, 0, false
	s.j.reset()
}

// Usage returns the usage found so far and whether any was found.
func (s *UsageScanner) Usage() (Usage, bool) { return s.usage, s.found }

// Scan feeds the next chunk of the body. It never modifies p and keeps no
// reference to it.
func (s *UsageScanner) Scan(p []byte) {
	switch s.mode {
	case UsageJSON:
		s.j.scan(p, s)
	case UsageSSE:
		s.scanSSE(p)
	}
}

const (
	sseLineStart = iota
	sseField
	sseSpace
	sseData
	sseSkip
)

const dataField = "data:"

func (s *UsageScanner) scanSSE(p []byte) {
	for len(p) > 0 {
		c := p[0]
		if c == '\n' && s.lastCR {
			s.lastCR = false
			p = p[1:]
			continue
		}
		s.lastCR = false
		switch s.line {
		case sseLineStart, sseField:
			switch {
			case c == '\n' || c == '\r':
				if s.line == sseLineStart {
					s.j.reset() // blank line: the event ends
				}
				s.endLine(c)
			case c == dataField[s.field]:
				s.line = sseField
				s.field++
				if int(s.field) == len(dataField) {
					s.line = sseSpace
				}
			default:
				s.line = sseSkip
			}
			p = p[1:]
		case sseSpace:
			s.line = sseData
			if c == ' ' {
				p = p[1:]
			}
		case sseData, sseSkip:
			end := lineEnd(p)
			if s.line == sseData {
				s.j.scan(p[:end], s)
			}
			if end == len(p) {
				return
			}
			s.endLine(p[end])
			p = p[end+1:]
		}
	}
}

func (s *UsageScanner) endLine(c byte) {
	s.line, s.field = sseLineStart, 0
	s.lastCR = c == '\r'
}

// lineEnd is the index of the first '\n' or '\r' in p, or len(p).
func lineEnd(p []byte) int {
	n := bytes.IndexByte(p, '\n')
	if n < 0 {
		n = len(p)
	}
	if r := bytes.IndexByte(p[:n], '\r'); r >= 0 {
		return r
	}
	return n
}

// record reads a complete usage object.
func (s *UsageScanner) record(obj []byte) {
	if u, ok := parseUsage(obj); ok {
		s.usage, s.found = u, true
	}
}

// Keys the tracker tells apart at the levels it follows.
const (
	keyOther = iota
	keyUsage
	keyResponse
)

// jsonTracker follows the structure of one JSON value byte by byte: depth,
// strings and escapes everywhere, and object keys only at the levels where
// usage may be (the top-level object, and the object under its "response"
// key). It copies the bytes of a usage object into cap until it closes.
type jsonTracker struct {
	depth     int32
	inStr     bool
	esc       bool
	isKey     bool // the current string is a key at a followed level
	expectKey bool // a followed level is before a key
	colon     bool // a followed level is after "key": and before its value
	topObj    bool // depth 1 is an object
	inResp    bool // depth 2 is the object under the top-level "response" key
	respNext  bool // the container opening next is the "response" value
	key       uint8
	keyBuf    [8]byte
	keyLen    uint8
	capturing bool
	capDepth  int32
	capLen    int
}

func (j *jsonTracker) reset() { *j = jsonTracker{} }

// followed reports whether keys are tracked at the current depth.
func (j *jsonTracker) followed() bool {
	return j.depth == 1 && j.topObj || j.depth == 2 && j.inResp
}

func (j *jsonTracker) scan(p []byte, s *UsageScanner) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if j.capturing {
			j.keep(c, s)
		}
		if j.inStr {
			if !j.capturing && !j.esc {
				// Fast path: skip to the next quote or backslash.
				k := stringEnd(p[i:])
				if k < 0 {
					j.keyBytes(p[i:])
					return
				}
				j.keyBytes(p[i : i+k])
				i += k
				c = p[i]
			}
			switch {
			case j.esc:
				j.esc = false
				j.keyByte(c)
			case c == '\\':
				j.esc = true
				j.keyByte(c)
			case c == '"':
				j.inStr = false
				if j.isKey {
					j.isKey = false
					j.key = keyOf(j.keyBuf[:min(int(j.keyLen), len(j.keyBuf))], j.keyLen)
					j.expectKey = false
				}
			default:
				j.keyByte(c)
			}
			continue
		}
		if !j.capturing && !j.followed() {
			// Deep inside the value only strings and brackets matter.
			for !structural[c] {
				if i++; i == len(p) {
					return
				}
				c = p[i]
			}
		}
		switch c {
		case ' ', '\t', '\n', '\r':
		case '"':
			j.inStr = true
			if j.followed() && j.expectKey {
				j.isKey, j.keyLen = true, 0
			}
			j.colon = false
		case '{', '[':
			j.open(c, s)
		case '}', ']':
			j.close(s)
		case ':':
			if j.followed() {
				j.colon = true
			}
		case ',':
			if j.followed() {
				j.expectKey = true
			}
		default:
			j.colon = false
		}
	}
}

// stringEnd is the index of the first '"' or '\\' in p, or -1.
func stringEnd(p []byte) int {
	q := bytes.IndexByte(p, '"')
	end := q
	if end < 0 {
		end = len(p)
	}
	if b := bytes.IndexByte(p[:end], '\\'); b >= 0 {
		return b
	}
	return q
}

func (j *jsonTracker) keyBytes(b []byte) {
	if !j.isKey || len(b) == 0 {
		return
	}
	if int(j.keyLen) < len(j.keyBuf) {
		copy(j.keyBuf[j.keyLen:], b)
	}
	j.keyLen = uint8(min(int(j.keyLen)+len(b), 255))
}

func (j *jsonTracker) keyByte(c byte) {
	if !j.isKey {
		return
	}
	if int(j.keyLen) < len(j.keyBuf) {
		j.keyBuf[j.keyLen] = c
	}
	if j.keyLen < 255 {
		j.keyLen++
	}
}

func keyOf(b []byte, n uint8) uint8 {
	switch {
	case int(n) == len("usage") && string(b) == "usage":
		return keyUsage
	case int(n) == len("response") && string(b) == "response":
		return keyResponse
	}
	return keyOther
}

func (j *jsonTracker) open(c byte, s *UsageScanner) {
	if j.colon && c == '{' && !j.capturing {
		switch {
		case j.key == keyUsage:
			j.capturing, j.capDepth, j.capLen = true, j.depth, 0
			j.keep(c, s)
		case j.key == keyResponse && j.depth == 1:
			j.respNext = true
		}
	}
	j.colon = false
	j.depth++
	switch {
	case j.depth == 1:
		j.topObj, j.expectKey = c == '{', c == '{'
	case j.depth == 2 && j.respNext:
		j.inResp, j.expectKey, j.respNext = true, true, false
	}
}

func (j *jsonTracker) close(s *UsageScanner) {
	if j.depth > 0 {
		j.depth--
	}
	j.colon = false
	if j.depth < 2 {
		j.inResp = false
	}
	if j.capturing && j.depth == j.capDepth {
		j.capturing = false
		if j.capLen <= len(s.cap) {
			s.record(s.cap[:j.capLen])
		}
	}
}

// keep appends c to the captured usage object, dropping whitespace outside
// strings; past the bound it only counts.
func (j *jsonTracker) keep(c byte, s *UsageScanner) {
	if !j.inStr && (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
		return
	}
	if j.capLen < len(s.cap) {
		s.cap[j.capLen] = c
	}
	if j.capLen <= len(s.cap) {
		j.capLen++
	}
}

// parseUsage reads the counts from one complete usage object, as captured
// by jsonTracker (whitespace outside strings dropped), with the package's
// scanner. Keys are compared as written, so an escaped key is none of these.
// When a key repeats the last one wins; a count that is not a number reads
// as 0. ok is false when b is not one JSON object.
func parseUsage(b []byte) (u Usage, ok bool) {
	s := scanner{b: b}
	err := s.object(func(key []byte, _ bool, val []byte) {
		switch string(key) {
		case "prompt_tokens", "input_tokens":
			u.Prompt = atoi(val)
		case "completion_tokens", "output_tokens":
			u.Completion = atoi(val)
		case "total_tokens":
			u.Total = atoi(val)
		case "prompt_tokens_details", "input_tokens_details":
			d := scanner{b: val}
			_ = d.object(func(k []byte, _ bool, v []byte) {
				if string(k) == "cached_tokens" {
					u.Cached = atoi(v)
				}
			})
		}
	})
	return u, err == nil
}

// atoi reads a non-negative integer (a fraction is dropped); anything else
// reads as 0. Values beyond 1e15 are clamped: no response has that many tokens.
func atoi(b []byte) int64 {
	var n int64
	for _, c := range b {
		if c == '.' || c == 'e' || c == 'E' {
			break
		}
		if c < '0' || c > '9' {
			return 0
		}
		if n < 1e15 {
			n = n*10 + int64(c-'0')
		}
	}
	return n
}
