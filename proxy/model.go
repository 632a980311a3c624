package proxy

import (
	"errors"
	"io"
	"strings"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/openai"
	"github.com/kvgate/kvgate/router"
)

// readModel is the lazy body inspection behind Exchange.Model. The router
// calls Model only when a model condition is the last one left, so bodies
// are read only for listeners whose rules need it. The bytes read are kept
// and replayed in front of the rest of the stream, so the body sent
// upstream is byte-for-byte what the client sent.
//
// At most config.DefaultMaxPromptBytes are read: routing runs before a pool
// is chosen, so no pool's inference.maxPromptBytes applies, and the bound is
// that setting's default. A model that appears only after this many bytes
// does not match.
func (x *Exchange) readModel() {
	if !modelBody(x) {
		return
	}
	buf, _ := x.peekBody(config.DefaultMaxPromptBytes, nil)
	x.model = openai.Model(buf)
}

// modelBody reports whether the request may carry an OpenAI-shaped JSON body.
func modelBody(x *Exchange) bool {
	if x.body == nil || x.method != "POST" {
		return false
	}
	ct := x.hdr.Get("content-type")
	return ct == "" || strings.Contains(strings.ToLower(ct), "json")
}

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
	body := x.peek.buf
	if !x.peek.whole {
		// x.body replays any prefix already read, so this is the whole body.
		all, err := io.ReadAll(x.body)
		if errors.Is(err, errBodyTooLarge) {
			return x.fail(413, errInvalidRequest, codeBodyTooLarge, bodyTooLargeMsg(x.proxy.limits().MaxBodyBytes))
		}
		if err != nil {
			return x.fail(400, errInvalidRequest, codeBodyReadFailed, "request body could not be read: "+err.Error())
		}
		body = all
	}
	out, ok := openai.RewriteModel(body, target)
	x.replaceBody(out)
	if ok && x.model == "" {
		x.model = openai.Model(body)
	}
	return nil
}
