package proxy

import (
	"strings"
	"unsafe"

	"github.com/kvgate/kvgate/config"
)

// Request path normalisation (RFC 3986 §6.2.2 and §5.2.4). Every request
// path is normalised once, at the start of Proxy.Serve, and that one path is
// what routing, authorization, redirects, rewrites, logs, spans and the
// upstream request see. Without it a DENY on /admin is bypassed by
// /%61dmin, //admin or /x/../admin, which a backend resolves to /admin.
//
// The rules, in order of the bytes:
//   - the path must start with '/' (the caller handles "*" and absolute-form);
//   - a raw control byte (0x00-0x20, 0x7f) or '#' (a fragment) is refused;
//   - a malformed escape (%zz, a lone %, %4) or %00 is refused;
//   - an escape of an unreserved character (ALPHA DIGIT - . _ ~) is decoded,
//     every other escape keeps its byte with uppercase hex digits;
//   - %2F and %5C (encoded '/' and '\') are refused, decoded to '/' or kept
//     as opaque characters, as pathOptions.escaped says;
//   - a raw '\' becomes '/' (as Envoy's and Istio's normalisation does);
//   - "." and ".." segments are removed (RFC 3986 §5.2.4), encoded ones too
//     once decoded; ".." above the root stays at the root;
//   - runs of '/' become one '/' when pathOptions.keepSlashes is false.
//
// Bytes of 0x80 and above are left as they are.

// escapedSlashes is what happens to %2F and %5C (config paths.escapedSlashes).
type escapedSlashes uint8

const (
	escapedReject escapedSlashes = iota // 400 (the default)
	escapedDecode                       // decode to '/' and normalise
	escapedKeep                         // forward unchanged; match as opaque characters
)

// pathOptions is the compiled `paths` block of the configuration. The zero
// value is the default: merge slashes, reject escaped slashes.
type pathOptions struct {
	keepSlashes bool // paths.mergeSlashes: false
	escaped     escapedSlashes
}

// compilePaths turns the configuration's paths block into pathOptions; unset
// fields (a configuration built in code, not defaulted) keep the defaults.
func compilePaths(c config.Paths) pathOptions {
	var o pathOptions
	if c.MergeSlashes != nil {
		o.keepSlashes = !*c.MergeSlashes
	}
	switch c.EscapedSlashes {
	case "decode":
		o.escaped = escapedDecode
	case "keep":
		o.escaped = escapedKeep
	}
	return o
}

// pathFault says why a request target was refused; pathOK means it was not.
type pathFault uint8

const (
	pathOK            pathFault = iota
	pathNotAbsolute             // does not start with '/'
	pathControl                 // a raw control byte or space
	pathFragment                // '#'
	pathBadEscape               // '%' not followed by two hex digits
	pathEncodedNUL              // %00
	pathEscapedSlash            // %2F or %5C under escapedSlashes: reject
	pathBadAuthority            // absolute-form target with no host or with userinfo
	pathAbsoluteNotH1           // absolute-form target outside HTTP/1.x
)

// code is the error code of the 400 reply.
func (f pathFault) code() errorCode {
	switch f {
	case pathNotAbsolute, pathBadAuthority, pathAbsoluteNotH1:
		return codeInvalidRequestTarget
	case pathControl:
		return codePathControlCharacter
	case pathFragment:
		return codePathFragment
	case pathBadEscape:
		return codePathBadEscape
	case pathEncodedNUL:
		return codePathEncodedNul
	case pathEscapedSlash:
		return codePathEscapedSlash
	}
	return codeInvalidPath
}

// message says what is wrong with the request target and what to do.
func (f pathFault) message() string {
	switch f {
	case pathNotAbsolute:
		return "request target must be a path starting with / (or * for OPTIONS, or http://host/path in HTTP/1.1): send an origin-form target like /v1/models"
	case pathControl:
		return "request target contains a space or control character: percent-encode it (e.g. %20)"
	case pathFragment:
		return "request target contains a fragment (#): leave the fragment out, or send a literal # as %23"
	case pathBadEscape:
		return "request path has a malformed percent-encoding: every % must be followed by two hex digits; send a literal % as %25"
	case pathEncodedNUL:
		return "request path contains an encoded NUL (%00), which kvgate never forwards: remove it"
	case pathEscapedSlash:
		return "request path contains an encoded slash or backslash (%2F or %5C), which kvgate rejects (paths.escapedSlashes: reject): send / instead, or ask the operator to set paths.escapedSlashes to decode or keep"
	case pathBadAuthority:
		return "absolute-form request target needs a host and no user information: send http://host[:port]/path"
	case pathAbsoluteNotH1:
		return "absolute-form request target (http://...) is only accepted in HTTP/1.1: send the path in :path and the host in :authority"
	}
	return "request path is not valid"
}

// pathSpecial marks the bytes the fast path must look at: '/', '%', '\',
// '#', controls, space and DEL. Every other byte is copied as it is.
var pathSpecial = func() (t [256]bool) {
	for c := 0; c <= ' '; c++ {
		t[c] = true
	}
	for _, c := range "/%\\#\x7f" {
		t[c] = true
	}
	return t
}()

// normalizePath returns the normal form of p, a request path without its
// query. A path that is already normal comes back as p itself, without
// allocating or touching buf. Otherwise the normal form is written into buf
// (grown as needed and returned for reuse) and the result aliases it: the
// caller owns buf and must keep the string no longer than buf's contents.
// On a fault the string is "" and p must be refused.
func normalizePath(p string, o pathOptions, buf []byte) (string, []byte, pathFault) {
	if pathIsNormal(p, o) {
		return p, buf, pathOK
	}
	b, f := rewritePath(p, o, buf[:0])
	if f != pathOK {
		return "", b, f
	}
	if string(b) == p { // the fast path was cautious: hand back p, not an alias of buf
		return p, b, pathOK
	}
	return b2s(b), b, pathOK
}

// pathIsNormal reports whether p is valid and already in normal form. It may
// answer false for a normal path (rewritePath then finds it unchanged) but
// never true for one that is not.
func pathIsNormal(p string, o pathOptions) bool {
	if len(p) == 0 || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !pathSpecial[c] {
			continue
		}
		switch c {
		case '/':
			rest := p[i+1:]
			if !o.keepSlashes && len(rest) > 0 && rest[0] == '/' || dotSegmentAhead(rest) {
				return false
			}
		case '%':
			if len(p)-i < 3 || !isUpperHex(p[i+1]) || !isUpperHex(p[i+2]) {
				return false
			}
			v := unhex(p[i+1])<<4 | unhex(p[i+2])
			if v == 0 || isUnreserved(v) || (v == '/' || v == '\\') && o.escaped != escapedKeep {
				return false
			}
			i += 2
		default: // '\', '#', controls
			return false
		}
	}
	return true
}

// dotSegmentAhead reports whether s starts with a "." or ".." segment.
func dotSegmentAhead(s string) bool {
	if len(s) == 0 || s[0] != '.' {
		return false
	}
	if len(s) == 1 || s[1] == '/' {
		return true
	}
	return s[1] == '.' && (len(s) == 2 || s[2] == '/')
}

// rewritePath writes the normal form of p into b (RFC 3986 §5.2.4 with the
// decoding of §6.2.2 done segment by segment, so that encoded dots count).
// b holds "/seg/seg..." as it goes; seg is the index just after the '/' that
// opened the current segment.
func rewritePath(p string, o pathOptions, b []byte) ([]byte, pathFault) {
	if len(p) == 0 || p[0] != '/' {
		return b, pathNotAbsolute
	}
	b = append(b, '/')
	seg := 1
	for i := 1; i < len(p); {
		c := p[i]
		switch {
		case c == '/' || c == '\\':
			b = endSegment(b, seg, false, o)
			b = append(b, '/')
			seg = len(b)
			i++
		case c == '%':
			if len(p)-i < 3 || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return b, pathBadEscape
			}
			v := unhex(p[i+1])<<4 | unhex(p[i+2])
			switch {
			case v == 0:
				return b, pathEncodedNUL
			case v == '/' || v == '\\':
				switch o.escaped {
				case escapedReject:
					return b, pathEscapedSlash
				case escapedDecode:
					b = endSegment(b, seg, false, o)
					b = append(b, '/')
					seg = len(b)
				default: // keep: an opaque character of this segment
					b = append(b, '%', upperHex(p[i+1]), upperHex(p[i+2]))
				}
			case isUnreserved(v):
				b = append(b, v)
			default:
				b = append(b, '%', upperHex(p[i+1]), upperHex(p[i+2]))
			}
			i += 3
		case c <= ' ' || c == 0x7f:
			return b, pathControl
		case c == '#':
			return b, pathFragment
		default:
			b = append(b, c)
			i++
		}
	}
	return endSegment(b, seg, true, o), pathOK
}

// endSegment applies dot-segment removal and slash merging to the segment
// b[seg:], which a '/' at b[seg-1] opened. A segment that ends the path and
// is removed leaves a trailing '/' ("/a/b/.." is "/a/"); one that is
// followed by another leaves nothing, the next segment writes its own '/'.
func endSegment(b []byte, seg int, last bool, o pathOptions) []byte {
	s := b[seg:]
	switch {
	case len(s) == 1 && s[0] == '.':
		b = b[:seg-1]
	case len(s) == 2 && s[0] == '.' && s[1] == '.':
		b = b[:seg-1]
		for len(b) > 0 && b[len(b)-1] != '/' { // drop the previous segment ...
			b = b[:len(b)-1]
		}
		if len(b) > 0 { // ... and the '/' that opened it
			b = b[:len(b)-1]
		}
	case len(s) == 0 && !o.keepSlashes && !last:
		b = b[:seg-1]
	default:
		return b
	}
	if last {
		b = append(b, '/')
	}
	return b
}

// isUnreserved: ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986 §2.3).
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool      { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }
func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

func upperHex(c byte) byte {
	if 'a' <= c && c <= 'f' {
		return c - ('a' - 'A')
	}
	return c
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// normalizeTarget checks the request target the engine stored in x.path and
// x.query and replaces x.path with its normal form, written into x.pathBuf
// when it differs (so it lives until releaseExchange). An HTTP/1.x
// absolute-form target (RFC 9112 §3.2.2) gives the request its host, which
// replaces the Host header, and its path. The query is only checked for a
// fragment and control bytes, never rewritten. A non-nil Reply is the 400
// that refuses the request.
func (x *Exchange) normalizeTarget(o pathOptions) *Reply {
	p := x.path
	if len(p) == 0 || p[0] != '/' {
		switch {
		case p == "*" && x.method == "OPTIONS":
			return x.checkQuery()
		case hasHTTPScheme(p):
			if len(x.proto) < 6 || x.proto[:6] != "HTTP/1" {
				return x.pathFail(pathAbsoluteNotH1)
			}
			host, path, ok := splitAbsolute(p)
			if !ok {
				return x.pathFail(pathBadAuthority)
			}
			x.host, p = host, path
		default:
			return x.pathFail(pathNotAbsolute)
		}
	}
	if r := x.checkQuery(); r != nil {
		return r
	}
	out, buf, f := normalizePath(p, o, x.pathBuf)
	x.pathBuf = buf
	if f != pathOK {
		return x.pathFail(f)
	}
	x.path = out
	return nil
}

// detachPath returns s, or a copy of it when it points into x.pathBuf: for
// holders that outlive the request (a span's attributes, the HTTP/2 client's
// HPACK table), since pathBuf is reused by the next request.
func (x *Exchange) detachPath(s string) string {
	if len(s) == 0 || cap(x.pathBuf) == 0 {
		return s
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(x.pathBuf)))
	if p := uintptr(unsafe.Pointer(unsafe.StringData(s))); p >= base && p < base+uintptr(cap(x.pathBuf)) {
		return strings.Clone(s)
	}
	return s
}

// checkQuery refuses a query holding a fragment or a control byte.
func (x *Exchange) checkQuery() *Reply {
	for i := 0; i < len(x.query); i++ {
		switch c := x.query[i]; {
		case c == '#':
			return x.pathFail(pathFragment)
		case c <= ' ' || c == 0x7f:
			return x.pathFail(pathControl)
		}
	}
	return nil
}

func (x *Exchange) pathFail(f pathFault) *Reply {
	return x.fail(400, errInvalidRequest, f.code(), f.message())
}

// hasHTTPScheme reports whether a target starts with http:// or https://,
// in any case (RFC 3986 §3.1: schemes are case-insensitive).
func hasHTTPScheme(t string) bool {
	return len(t) >= 7 && strings.EqualFold(t[:7], "http://") || len(t) >= 8 && strings.EqualFold(t[:8], "https://")
}

// splitAbsolute splits an absolute-form target without its query into host
// (with its port) and path ("/" when the target has none). A target with no
// host or with userinfo (RFC 9110 §4.2.4) is refused.
func splitAbsolute(t string) (host, path string, ok bool) {
	rest := t[strings.IndexByte(t, ':')+3:]
	host, path = rest, "/"
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		host, path = rest[:i], rest[i:]
	}
	if host == "" {
		return "", "", false
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; c <= ' ' || c == 0x7f || c == '@' || c == '#' || c == '\\' {
			return "", "", false
		}
	}
	return host, path, true
}
