package proxy

import (
	"crypto/tls"
	"errors"
	"net"
)

// h2Guard watches the frame headers of a client's HTTP/2 connection as the
// server reads them, and ends the connection when one header block is split
// into more CONTINUATION frames than any real client sends.
//
// x/net's HTTP/2 server bounds a header block by its decoded size, but an
// empty CONTINUATION frame adds nothing to that size: a client could send
// them without end (a million in 1.6 s was measured) while holding a stream
// half-open and a goroutine busy. Real clients split a header block only when
// it exceeds the peer's frame size (16 KiB at least), so the 64 KiB default of
// limits.maxHeaderBytes needs at most four; maxContinuations leaves a wide
// margin.
//
// It passes the 24-byte client preface, then reads only the nine-byte frame
// headers; payloads are skipped, never copied.
type h2Guard struct {
	net.Conn
	pre   int     // preface bytes still to pass
	hdr   [9]byte // the frame header being assembled
	nhdr  int
	skip  uint32 // payload bytes of the current frame still to pass
	conts int    // CONTINUATION frames in the current header block
	err   error  // sticky once the limit is passed
}

// maxContinuations is the most CONTINUATION frames one header block may use.
const maxContinuations = 32

var errContinuationFlood = errors.New("proxy: HTTP/2 header block split into more than 32 CONTINUATION frames")

// h2GuardTLS keeps ConnectionState visible to the HTTP/2 server, which reads
// the TLS state (and so the client's certificate) through it. The plaintext
// guard must not have the method: the server would take h2c for TLS.
type h2GuardTLS struct{ *h2Guard }

func (g h2GuardTLS) ConnectionState() tls.ConnectionState {
	return g.Conn.(interface{ ConnectionState() tls.ConnectionState }).ConnectionState()
}

// guardH2 wraps a client connection that is about to speak HTTP/2.
func guardH2(c net.Conn) net.Conn {
	g := &h2Guard{Conn: c, pre: len(h2Preface)}
	if _, ok := c.(interface{ ConnectionState() tls.ConnectionState }); ok {
		return h2GuardTLS{g}
	}
	return g
}

func (g *h2Guard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.Conn.Read(p)
	if g.err = g.scan(p[:n]); g.err != nil {
		return 0, g.err
	}
	return n, err
}

// scan follows the frame boundaries through b.
func (g *h2Guard) scan(b []byte) error {
	for len(b) > 0 {
		switch {
		case g.pre > 0:
			k := min(g.pre, len(b))
			g.pre -= k
			b = b[k:]
		case g.skip > 0:
			k := min(int(g.skip), len(b))
			g.skip -= uint32(k)
			b = b[k:]
		default:
			k := copy(g.hdr[g.nhdr:], b)
			g.nhdr += k
			b = b[k:]
			if g.nhdr < len(g.hdr) {
				return nil
			}
			g.nhdr = 0
			g.skip = uint32(g.hdr[0])<<16 | uint32(g.hdr[1])<<8 | uint32(g.hdr[2])
			switch g.hdr[3] { // frame type (RFC 9113 section 6)
			case 0x1: // HEADERS starts a block
				g.conts = 0
			case 0x9: // CONTINUATION
				if g.conts++; g.conts > maxContinuations {
					return errContinuationFlood
				}
			}
		}
	}
	return nil
}
