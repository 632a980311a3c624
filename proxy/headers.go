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
	for _, h := range hopByHop {
		if strings.EqualFold(name, h) {
			return true
		}
	}
	if connection == "" {
		return false
	}
	for connection != "" {
		var tok string
		tok, connection = cut(connection, ',')
		if strings.EqualFold(strings.TrimSpace(tok), name) {
			return true
		}
	}
	return false
}

// isForwarding reports the fields kvgate rewrites from untrusted peers.
func isForwarding(name string) bool {
	return strings.EqualFold(name, "forwarded") ||
		strings.EqualFold(name, "x-forwarded-for") ||
		strings.EqualFold(name, "x-forwarded-proto") ||
		strings.EqualFold(name, "x-forwarded-host")
}

// copyRequestHeaders writes the client's fields minus hop-by-hop ones, then
// the forwarding fields and the request id.
func copyRequestHeaders(x *Exchange, dst headerSink) {
	conn := x.hdr.Get("connection")
	trusted := x.listener.trusts(x.remote.Addr())
	x.hdr.Each(func(name, value string) {
		if isHopByHop(name, conn) || strings.EqualFold(name, "host") {
			return
		}
		if strings.EqualFold(name, "x-request-id") {
			return // written below, exactly once
		}
		if !trusted && isForwarding(name) {
			return
		}
		if strings.EqualFold(name, "x-forwarded-client-cert") && !x.listener.cfg.TrustForwardedClientCert {
			return
		}
		dst.Add(name, value)
	})
	if te := x.hdr.Get("te"); te != "" && strings.Contains(strings.ToLower(te), "trailers") {
		dst.Add("Te", "trailers")
	}
	writeForwarded(x, trusted, dst)
	writeClientCert(x, dst)
	dst.Add("X-Request-Id", x.requestID)
}

func writeForwarded(x *Exchange, trusted bool, dst headerSink) {
	ip := x.remote.Addr().Unmap()
	ipStr := ip.String()
	proto := "http"
	if x.tls {
		proto = "https"
	}
	prior := ""
	if trusted {
		prior = x.hdr.Get("x-forwarded-for")
	}
	if prior != "" {
		dst.Add("X-Forwarded-For", prior+", "+ipStr)
	} else {
		dst.Add("X-Forwarded-For", ipStr)
	}
	if !trusted || x.hdr.Get("x-forwarded-proto") == "" {
		dst.Add("X-Forwarded-Proto", proto)
	}
	if !trusted || x.hdr.Get("x-forwarded-host") == "" {
		dst.Add("X-Forwarded-Host", x.host)
	}
	node := ipStr
	if ip.Is6() {
		node = `"[` + ipStr + `]"`
	}
	elem := "for=" + node + ";proto=" + proto
	if x.host != "" {
		elem += ";host=" + quoteIfNeeded(x.host)
	}
	if trusted {
		if prev := x.hdr.Get("forwarded"); prev != "" {
			elem = prev + ", " + elem
		}
	}
	dst.Add("Forwarded", elem)
}

func quoteIfNeeded(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
		}
	}
	return s
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
	x.requestID = string(x.idBuf[:])
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
