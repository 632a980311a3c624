package proxy

import (
	"math/rand/v2"
	"net/netip"
	"strings"
)

// headerSink receives the header fields sent upstream.
type headerSink interface {
	Add(name, value string)
}

// hopByHop lists the fields that describe one connection, not the message
// (RFC 9110 section 7.6.1); a proxy must not forward them.
var hopByHop = [...]string{
	"connection", "proxy-connection", "keep-alive", "te", "transfer-encoding",
	"upgrade", "proxy-authenticate", "proxy-authorization", "trailer",
}

// isHopByHop reports whether name is hop-by-hop, either by definition or
// because the Connection header named it.
func isHopByHop(name, connection string) bool {
	if isHopByHopName(name) {
		return true
	}
	for connection != "" {
		var tok string
		tok, connection = cut(connection, ',')
		if fieldIs(name, strings.TrimSpace(tok)) {
			return true
		}
	}
	return false
}

// isHopByHopName reports whether name is in hopByHop. It runs for every
// request and response field, so it dispatches on the length first: most
// fields need no comparison at all, and none more than two.
func isHopByHopName(name string) bool {
	switch len(name) {
	case 2:
		return fieldIs(name, "te")
	case 7:
		return fieldIs(name, "upgrade") || fieldIs(name, "trailer")
	case 10:
		return fieldIs(name, "connection") || fieldIs(name, "keep-alive")
	case 16:
		return fieldIs(name, "proxy-connection")
	case 17:
		return fieldIs(name, "transfer-encoding")
	case 18:
		return fieldIs(name, "proxy-authenticate")
	case 19:
		return fieldIs(name, "proxy-authorization")
	}
	return false
}

// fieldIs reports whether the field names a and b are equal ignoring ASCII
// case. Comparing the lengths first skips the call for almost every pair.
func fieldIs(a, b string) bool {
	return len(a) == len(b) && strings.EqualFold(a, b)
}

// isForwarding reports the fields kvgate rewrites from untrusted peers.
func isForwarding(name string) bool {
	return fieldIs(name, "forwarded") ||
		fieldIs(name, "x-forwarded-for") ||
		fieldIs(name, "x-forwarded-proto") ||
		fieldIs(name, "x-forwarded-host")
}

// copyRequestHeaders writes the client's fields minus hop-by-hop ones, then
// the forwarding fields and the request id.
func copyRequestHeaders(x *Exchange, dst headerSink) {
	c := &x.hcopy
	*c = headerCopy{conn: x.hdr.Get("connection"), trusted: x.listener.trusts(x.remote.Addr()),
		xfcc: x.listener.cfg.TrustForwardedClientCert, dst: dst, rt: &x.rt, traced: x.span.s != nil}
	x.hdr.Each(c)
	emitReqHeaders(x, dst) // requestHeaderModifier overlay (routing.go)
	if te := x.hdr.Get("te"); te != "" && strings.Contains(strings.ToLower(te), "trailers") {
		dst.Add("Te", "trailers")
	}
	writeForwarded(x, c.trusted, dst)
	writeClientCert(x, dst)
	dst.Add("X-Request-Id", x.requestID)
	if c.traced {
		injectTrace(x, dst) // tracing.go
	}
}

// headerCopy decides, field by field, what goes upstream.
type headerCopy struct {
	conn          string
	trusted, xfcc bool
	dst           headerSink
	rt            *routeState // its requestHeaderModifier names are written by emitReqHeaders
	traced        bool        // traceparent / tracestate are replaced by the span's (tracing.go)
}

// Field decides one field (FieldVisitor).
func (c *headerCopy) Field(name, value string) {
	switch {
	case isHopByHop(name, c.conn), fieldIs(name, "host"):
	case fieldIs(name, "x-request-id"): // written once, after the copy
	case fieldIs(name, "x-forwarded-for"), fieldIs(name, "forwarded"):
		// rewritten by writeForwarded, extending a trusted chain
	case !c.trusted && isForwarding(name):
	case !c.xfcc && fieldIs(name, "x-forwarded-client-cert"):
	case c.rt.reqTouched(name):
	case c.traced && isTraceHeader(name):
	default:
		c.dst.Add(name, value)
	}
}

func writeForwarded(x *Exchange, trusted bool, dst headerSink) {
	ip := x.remote.Addr().Unmap()
	proto := "http"
	if x.tls {
		proto = "https"
	}
	// Values are built in the exchange's scratch buffer: no allocation per
	// request once the pooled buffer has grown. Each value is a fresh slice of
	// it, so appending later never changes a value already handed out.
	b := x.scratch[:0]
	if prior := x.hdr.Get("x-forwarded-for"); trusted && prior != "" {
		b = append(append(b, prior...), ", "...)
	}
	b = ip.AppendTo(b)
	dst.Add("X-Forwarded-For", b2s(b))
	if !trusted || x.hdr.Get("x-forwarded-proto") == "" {
		dst.Add("X-Forwarded-Proto", proto)
	}
	if !trusted || x.hdr.Get("x-forwarded-host") == "" {
		dst.Add("X-Forwarded-Host", x.host)
	}
	start := len(b)
	if prev := x.hdr.Get("forwarded"); trusted && prev != "" {
		b = append(append(b, prev...), ", "...)
	}
	b = append(b, "for="...)
	if ip.Is6() {
		b = append(b, `"[`...)
		b = ip.AppendTo(b)
		b = append(b, `]"`...)
	} else {
		b = ip.AppendTo(b)
	}
	b = append(append(b, ";proto="...), proto...)
	if x.host != "" {
		b = appendQuotedIfNeeded(append(b, ";host="...), x.host)
	}
	dst.Add("Forwarded", b2s(b[start:]))
	x.scratch = b
}

// appendQuotedIfNeeded appends s to b as a Forwarded parameter value (RFC
// 7239): bare when it is a token of letters, digits, '.' and '-', else as a
// quoted string with '"' and '\\' escaped. A host with a port ("a:8080")
// is quoted, so this runs on most requests: it writes into b, never allocates.
func appendQuotedIfNeeded(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			b = append(b, '"')
			for j := 0; j < len(s); j++ {
				if s[j] == '"' || s[j] == '\\' {
					b = append(b, '\\')
				}
				b = append(b, s[j])
			}
			return append(b, '"')
		}
	}
	return append(b, s...)
}

// ensureRequestID keeps a well-formed incoming X-Request-Id or makes one.
func ensureRequestID(x *Exchange) {
	if id := x.hdr.Get("x-request-id"); id != "" && len(id) <= 128 && printable(id) {
		x.requestID = id
		return
	}
	const hexdig = "0123456789abcdef"
	a, b := rand.Uint64(), rand.Uint64()
	for i := 0; i < 16; i++ {
		x.idBuf[i] = hexdig[a>>(60-4*i)&0xf]
		x.idBuf[16+i] = hexdig[b>>(60-4*i)&0xf]
	}
	x.requestID = b2s(x.idBuf[:]) // lives in the pooled Exchange, like every request string
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// parsePrefixes turns CIDRs or bare addresses into prefixes.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, err
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
