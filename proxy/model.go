package proxy

import (
	"bytes"
	"errors"
	"io"
	"strings"

	"github.com/kvgate/kvgate/router"
)

// modelPrefixBytes is how much of a JSON body is read to find its `model`
// for model-match rules (the same bound as inference.maxPromptBytes'
// default). A model that appears only after this many bytes does not match.
const modelPrefixBytes = 128 << 10

// readModel is the lazy body inspection behind Exchange.Model. The router
// calls Model only when a model condition is the last one left, so bodies
// are read only for listeners whose rules need it. The bytes read are kept
// and replayed in front of the rest of the stream, so the body sent
// upstream is byte-for-byte what the client sent.
func (x *Exchange) readModel() {
	if !modelBody(x) {
		return
	}
	n := int64(modelPrefixBytes)
	if x.bodyLen >= 0 && x.bodyLen < n {
		n = x.bodyLen
	}
	buf := make([]byte, n)
	k, err := io.ReadFull(x.body, buf)
	buf = buf[:k]
	x.rt.prefix = buf
	switch {
	case err == nil && (x.bodyLen < 0 || int64(k) < x.bodyLen):
		x.body = io.MultiReader(bytes.NewReader(buf), x.body)
	case err == nil || err == io.EOF || err == io.ErrUnexpectedEOF:
		x.rt.whole = true
		x.body = bytes.NewReader(buf)
	default: // replay what arrived, then fail as the original stream did
		x.body = io.MultiReader(bytes.NewReader(buf), errReader{err})
	}
	x.model = router.ModelField(buf)
}

// modelBody reports whether the request may carry an OpenAI-shaped JSON body.
func modelBody(x *Exchange) bool {
	if x.body == nil || x.method != "POST" {
		return false
	}
	ct := x.hdr.Get("content-type")
	return ct == "" || strings.Contains(strings.ToLower(ct), "json")
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// rewriteModel applies a backend's modelRewrite. The `model` key may follow
// a long messages array, so the whole body (bounded by limits.maxBodyBytes)
// is read before rewriting; the body sent upstream then has a known length.
func rewriteModel(x *Exchange, b *router.Backend) *Reply {
	if len(b.ModelRewrite) == 0 || !modelBody(x) {
		return nil
	}
	target, ok := b.RewriteModel(rnd())
	if !ok {
		return nil
	}
	body := x.rt.prefix
	if !x.rt.whole {
		// x.body replays any prefix already read, so this is the whole body.
		all, err := io.ReadAll(x.body)
		if errors.Is(err, errBodyTooLarge) {
			return x.fail(413, errInvalidRequest, "body_too_large", bodyTooLargeMsg(x.proxy.limits().MaxBodyBytes))
		}
		if err != nil {
			return x.fail(400, errInvalidRequest, "body_read_failed", "request body could not be read: "+err.Error())
		}
		body = all
	}
	out, ok := router.RewriteModelField(body, target)
	x.rt.prefix, x.rt.whole = out, true
	x.body = bytes.NewReader(out)
	x.bodyLen = int64(len(out))
	if ok && x.model == "" {
		x.model = router.ModelField(body)
	}
	return nil
}
