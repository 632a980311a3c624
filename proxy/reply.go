package proxy

import (
	"bytes"
	"io"

	"github.com/kvgate/kvgate/internal/jsonstr"
)

// Reply is what the core hands back to an engine: a status, header fields and
// an optional streaming body. The engine writes it and then calls Finish
// exactly once, with the error that ended the body copy (nil on success).
type Reply struct {
	Status int
	Header []Field
	// Body is nil for an empty body. It is read until EOF and never buffered whole.
	Body io.Reader
	// Length is the body length, -1 when unknown: the engine then streams it
	// (chunked / DATA frames) and flushes after every read.
	Length int64
	// TrailerNames are announced before the body; Trailers gives their values after EOF.
	TrailerNames []string
	Trailers     func() []Field

	owner *Exchange
	done  bool
}

// Finish reports how the body copy ended and releases everything the
// request held. Only the first call has an effect, so engines may call it
// from a deferred path and from a body Close alike, but only from the
// goroutine that writes the reply. After Finish the Reply and its Exchange
// must not be used.
func (r *Reply) Finish(err error, n int64) {
	if r.done || r.owner == nil {
		return
	}
	r.done = true
	r.owner.finish(err, n)
}

// errorReply builds an OpenAI-shaped JSON error:
// {"error":{"message":...,"type":...,"code":...}}.
func errorReply(status int, typ errorType, code errorCode, msg string) *Reply {
	b := errorJSON(typ, code, msg)
	return &Reply{
		Status: status,
		Header: []Field{{"Content-Type", "application/json"}},
		Body:   bytes.NewReader(b),
		Length: int64(len(b)),
	}
}

// errorJSON is the body of an error reply. It is JSON whatever bytes its
// arguments hold (messages quote request paths and hosts as sent).
func errorJSON(typ errorType, code errorCode, msg string) []byte {
	b := make([]byte, 0, 64+len(typ)+len(code)+len(msg)+len(msg)/8)
	b = append(b, `{"error":{"message":`...)
	b = jsonstr.Append(b, msg)
	b = append(b, `,"type":`...)
	b = jsonstr.Append(b, string(typ))
	b = append(b, `,"code":`...)
	b = jsonstr.Append(b, string(code))
	return append(b, "}}\n"...)
}

// withHeader appends a header field and returns the reply.
func (r *Reply) withHeader(name, value string) *Reply {
	r.Header = append(r.Header, Field{name, value})
	return r
}
