package openai

import (
	"errors"
	"strings"
)

var (
	// ErrInvalidJSON means the body is not a JSON object (nor the beginning of
	// one). Route the request with the pool's fallback balancer.
	ErrInvalidJSON = errors.New("openai: request body is not a JSON object; route it with the fallback balancer")
	// ErrUnsupportedPath means the path has no known OpenAI prompt shape. Route
	// the request with the pool's fallback balancer.
	ErrUnsupportedPath = errors.New("openai: path is not one of /v1/chat/completions, /v1/completions, /v1/responses, /v1/embeddings; route it with the fallback balancer")
)

// Prompt is what Extract reads from a request body. A Prompt may be reused
// across requests (from a sync.Pool, say): Extract overwrites every field and
// appends into Text[:0], so steady-state extraction does not allocate.
type Prompt struct {
	// Model is the top-level "model" string: a base model or a LoRA adapter
	// name. Empty when absent, not a string, or cut off by truncation.
	Model string
	// CacheSalt is the top-level "cache_salt" string; empty when absent.
	CacheSalt string
	// Text is the prompt in a canonical form (see Extract). Only its leading
	// full blocks matter for routing; it is never sent anywhere.
	Text []byte
	// Truncated reports that the body ended inside the JSON document: Text is
	// what was read so far, and Model or CacheSalt may be missing if they came
	// after the cut.
	Truncated bool
}

// shape is the prompt layout of one OpenAI endpoint.
type shape uint8

const (
	shapeNone shape = iota
	shapeChat
	shapeCompletions
	shapeResponses
	shapeEmbeddings
)

// shapeOf maps a request path to its shape by suffix, so prefixes added by
// route rewrites (/openai/v1/..., /v1/...) do not matter. A query is ignored.
func shapeOf(path string) shape {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	path = strings.TrimSuffix(path, "/")
	switch {
	case strings.HasSuffix(path, "/chat/completions"):
		return shapeChat
	case strings.HasSuffix(path, "/completions"):
		return shapeCompletions
	case strings.HasSuffix(path, "/responses"):
		return shapeResponses
	case strings.HasSuffix(path, "/embeddings"):
		return shapeEmbeddings
	}
	return shapeNone
}

// Top-level fields the extractor reads.
const (
	fModel = iota
	fSalt
	fTools
	fFunctions
	fSystem
	fMessages
	fInstructions
	fInput
	fPrompt
	nFields
)

// sections lists, per shape, the top-level fields that make up Text in the
// order they are written, whatever their order in the body. Tool definitions
// and system text come first because chat templates render them first.
var sections = [...][]int{
	shapeChat:        {fTools, fFunctions, fSystem, fMessages},
	shapeCompletions: {fPrompt},
	shapeResponses:   {fTools, fInstructions, fInput},
	shapeEmbeddings:  {fInput},
}

func topField(name []byte) int {
	switch string(name) {
	case "model":
		return fModel
	case "cache_salt":
		return fSalt
	case "tools":
		return fTools
	case "functions":
		return fFunctions
	case "system":
		return fSystem
	case "messages":
		return fMessages
	case "instructions":
		return fInstructions
	case "input":
		return fInput
	case "prompt":
		return fPrompt
	}
	return -1
}

// Extract reads the model, the cache salt and the prompt text of an
// OpenAI-shaped request body into dst, reusing dst.Text.
//
// path selects the shape by suffix: /chat/completions, /completions,
// /responses, /embeddings; any other path returns ErrUnsupportedPath. body is
// the request body or a prefix of it (the caller bounds it: the proxy reads
// at most the pool's inference.maxPromptBytes); when it ends inside the JSON
// document Extract returns nil with dst.Truncated set. A body that
// is not a JSON object returns ErrInvalidJSON. Duplicate keys: the last wins,
// as in the Python servers behind kvgate.
//
// Text is canonical, so the same conversation always yields the same bytes and
// a longer conversation extends a shorter one:
//
//   - chat: "tools: <compact JSON>\n" for tools (and legacy functions), then
//     "system: <text>\n" for a top-level system field, then for every message
//     "<role>: <content>\n". Multi-part content joins its parts with "\n"
//     (text parts by their text, other parts as compact JSON); name,
//     tool_calls and tool_call_id follow the content, each after a "\n".
//   - responses: tools as for chat, "system: <instructions>\n", then input: a
//     string as is, or each item as a chat message (items without a role use
//     their type, e.g. "function_call: ...").
//   - completions and embeddings: the prompt or input; arrays join their
//     elements with "\n" (token arrays as their decimal digits).
//
// Extract is safe for concurrent use on distinct dst values. It allocates
// only when Text must grow or Model / CacheSalt change from dst's old values.
func Extract(path string, body []byte, dst *Prompt) error {
	dst.Text = dst.Text[:0]
	dst.Truncated = false
	sh := shapeOf(path)
	if sh == shapeNone {
		clearNames(dst)
		return ErrUnsupportedPath
	}
	s := scanner{b: body}
	var pos [nFields]int
	switch err := s.top(&pos); err {
	case nil:
	case errEOF:
		dst.Truncated = true
	default:
		clearNames(dst)
		return ErrInvalidJSON
	}
	s.assign(&dst.Model, pos[fModel])
	s.assign(&dst.CacheSalt, pos[fSalt])
	for _, f := range sections[sh] {
		if pos[f] < 0 {
			continue
		}
		if s.section(f, sh, pos[f], &dst.Text) == errEOF {
			dst.Truncated = true
		}
	}
	return nil
}

func clearNames(dst *Prompt) {
	dst.Model = ""
	dst.CacheSalt = ""
}

// top scans the top-level object once, validating it, and records in pos the
// offset of each known field's value (-1 when absent; the last duplicate wins).
// It returns nil, errEOF (the body was cut) or errSyntax.
func (s *scanner) top(pos *[nFields]int) error {
	for i := range pos {
		pos[i] = -1
	}
	c, err := s.peek()
	if err != nil || c != '{' {
		return errSyntax // empty, blank or not an object
	}
	s.i++
	if err := s.members(pos[:], lookupKey); err != nil {
		return err
	}
	return s.end()
}

// end accepts only whitespace after the top-level object.
func (s *scanner) end() error {
	s.ws()
	if s.i != len(s.b) {
		return errSyntax
	}
	return nil
}

// lookupKey maps a raw key to a top-level field, decoding escapes if any.
func lookupKey(raw []byte, esc bool) int {
	if esc {
		if len(raw) > 64 {
			return -1
		}
		var buf [64]byte
		raw = appendUnescaped(buf[:0], raw)
	}
	return topField(raw)
}

// assign sets *dst to the complete string value at pos, or "" when there is
// none. It does not allocate when *dst already holds that value.
func (s *scanner) assign(dst *string, pos int) {
	if pos < 0 {
		*dst = ""
		return
	}
	s.i = pos
	if c, _ := s.peek(); c != '"' {
		*dst = ""
		return
	}
	raw, esc, err := s.str()
	if err != nil {
		*dst = ""
		return
	}
	if esc {
		var buf [128]byte
		raw = appendUnescaped(buf[:0], raw)
	}
	if *dst != string(raw) {
		*dst = string(raw)
	}
}

// section appends one top-level field's text, followed by "\n" when it wrote
// anything. It returns errEOF when the value was cut.
func (s *scanner) section(f int, sh shape, pos int, out *[]byte) error {
	s.i = pos
	start := len(*out)
	var err error
	switch f {
	case fTools, fFunctions:
		*out = append(*out, "tools: "...)
		err = s.value(out)
	case fSystem, fInstructions:
		*out = append(*out, "system: "...)
		err = s.content(out, 0)
	default:
		err = s.content(out, 0)
	}
	if len(*out) > start {
		*out = append(*out, '\n')
	}
	return err
}

// maxItemDepth bounds how deeply messages nest inside content before the rest
// is copied as compact JSON; it keeps hostile bodies from costing more than a
// few passes over the input.
const maxItemDepth = 4

// content appends the text of a content-like value: a string as is, an array
// element by element joined with "\n", an object as an item, null as nothing,
// other scalars as written.
func (s *scanner) content(out *[]byte, depth int) error {
	c, err := s.peek()
	if err != nil {
		return err
	}
	switch c {
	case '"':
		raw, _, err := s.str()
		if err == errSyntax {
			return err
		}
		*out = appendUnescaped(*out, raw)
		return err
	case '[':
		if depth >= maxItemDepth {
			return s.value(out)
		}
		return s.elements(out, depth)
	case '{':
		if depth >= maxItemDepth {
			return s.value(out)
		}
		return s.item(out, depth+1)
	case 'n':
		return s.value(nil)
	}
	return s.value(out)
}

// elements appends each element of the array at s.i, joined with "\n".
func (s *scanner) elements(out *[]byte, depth int) error {
	s.i++ // '['
	c, err := s.peek()
	if err != nil {
		return err
	}
	if c == ']' {
		s.i++
		return nil
	}
	for first := true; ; first = false {
		if !first {
			*out = append(*out, '\n')
		}
		c, err := s.peek()
		if err != nil {
			return err
		}
		if c == '[' {
			err = s.value(out) // nested arrays (token batches) stay compact JSON
		} else {
			err = s.content(out, depth)
		}
		if err != nil {
			return err
		}
		if done, err := s.next(']'); done || err != nil {
			return err
		}
	}
}

// Fields of a message, a response item or a content part, in the order their
// text is written.
const (
	iRole = iota
	iType
	iName
	iContent
	iText
	iToolCalls
	iFunctionCall
	iArguments
	iOutput
	iToolCallID
	iCallID
	nItem
)

func itemField(name []byte) int {
	switch string(name) {
	case "role":
		return iRole
	case "type":
		return iType
	case "name":
		return iName
	case "content":
		return iContent
	case "text":
		return iText
	case "tool_calls":
		return iToolCalls
	case "function_call":
		return iFunctionCall
	case "arguments":
		return iArguments
	case "output":
		return iOutput
	case "tool_call_id":
		return iToolCallID
	case "call_id":
		return iCallID
	}
	return -1
}

// item appends the text of the object at s.i. A message (any of role,
// content, name, tool calls, arguments, output) is written as
// "<role or type>: <fields joined by \n>"; a content part with only a text
// field as its text; anything else as compact JSON.
func (s *scanner) item(out *[]byte, depth int) error {
	start := s.i
	var pos [nItem]int
	for i := range pos {
		pos[i] = -1
	}
	scanErr := s.fields(&pos)
	end := s.i
	message := false
	for f := iName; f < nItem; f++ {
		if f != iText && pos[f] >= 0 {
			message = true
		}
	}
	message = message || pos[iRole] >= 0
	var err error
	switch {
	case message:
		err = s.message(out, &pos, depth)
	case pos[iText] >= 0:
		s.i = pos[iText]
		err = s.content(out, depth)
	default:
		s.i = start
		err = s.value(out)
	}
	s.i = end
	if scanErr != nil {
		return scanErr
	}
	return err
}

// fields scans the object at s.i, recording the value offsets of item fields.
func (s *scanner) fields(pos *[nItem]int) error {
	s.i++ // '{'
	return s.members(pos[:], itemKey)
}

// itemKey maps an unescaped key to its item field index, -1 otherwise.
func itemKey(raw []byte, esc bool) int {
	if esc {
		return -1
	}
	return itemField(raw)
}

// members scans an object's members after its '{' up to and including its
// '}', recording in pos the value offset of each key that field maps to an
// index (-1: not recorded; the last duplicate wins).
func (s *scanner) members(pos []int, field func(raw []byte, esc bool) int) error {
	c, err := s.peek()
	if err != nil {
		return err
	}
	if c == '}' {
		s.i++
		return nil
	}
	for {
		raw, esc, err := s.objKey()
		if err != nil {
			return err
		}
		if f := field(raw, esc); f >= 0 {
			if _, err := s.peek(); err != nil {
				return err
			}
			pos[f] = s.i
		}
		if err := s.value(nil); err != nil {
			return err
		}
		if done, err := s.next('}'); done || err != nil {
			return err
		}
	}
}

// next consumes the separator after a member or element: ',' means more
// follow, closer ends the container, anything else is a syntax error.
func (s *scanner) next(closer byte) (done bool, err error) {
	c, err := s.peek()
	if err != nil {
		return false, err
	}
	s.i++
	switch c {
	case ',':
		return false, nil
	case closer:
		return true, nil
	}
	return false, errSyntax
}

// message writes "<header>: <field>\n<field>..." for the recorded fields.
func (s *scanner) message(out *[]byte, pos *[nItem]int, depth int) error {
	header := pos[iRole]
	if header < 0 {
		header = pos[iType]
	}
	if header >= 0 {
		s.i = header
		if err := s.content(out, maxItemDepth); err != nil {
			return err
		}
	}
	*out = append(*out, ": "...)
	first := true
	for f := iName; f < nItem; f++ {
		if pos[f] < 0 {
			continue
		}
		if !first {
			*out = append(*out, '\n')
		}
		first = false
		s.i = pos[f]
		if err := s.content(out, depth); err != nil {
			return err
		}
	}
	return nil
}
