package proxy

import (
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/kvgate/kvgate/mtls/spiffetest"
)

// BenchmarkListenerHandshake measures the TLS handshake cost through a kvgate
// listener on loopback (a new TCP connection, a handshake, close): full
// handshakes against resumed ones (TLS 1.3 PSK from a session ticket), with a
// certificate-file listener and with mTLS on the workload SVID.
func BenchmarkListenerHandshake(b *testing.B) {
	env := newIDEnv(b)
	ca := spiffetest.NewCA("example.org")
	dir := b.TempDir()
	crt, key := dir+"/tls.crt", dir+"/tls.key"
	if err := spiffetest.WriteKeyPair(crt, key, ca.Leaf("localhost")); err != nil {
		b.Fatal(err)
	}
	yaml := env.identityYAML() + fmt.Sprintf(`listeners:
  - name: files
    address: "127.0.0.1:0"
    tls: {certFile: %q, keyFile: %q}
%s%s`, crt, key, mtlsListener("mtls", "require"), simple("127.0.0.1:1"))
	p := runProxy(b, yaml, nil)
	filesConf := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", NextProtos: []string{"h2"}}
	mtlsConf := spiffeTLS(b, env.ca.SVID(allowedID), env.ca.Bundle())
	mtlsConf.NextProtos = []string{"h2"}
	for _, c := range []struct {
		name, listener string
		conf           *tls.Config
	}{{"files", "files", filesConf}, {"mtls", "mtls", mtlsConf}} {
		addr := p.Listener(c.listener).Addr().String()
		for _, resume := range []bool{false, true} {
			name := c.name + "/full"
			conf := c.conf.Clone()
			if resume {
				name = c.name + "/resumed"
				conf.ClientSessionCache = tls.NewLRUClientSessionCache(1)
				handshake(b, addr, conf, false) // fills the cache
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					handshake(b, addr, conf, resume)
				}
			})
		}
	}
}

// handshake dials addr, completes a TLS handshake and reads the server's
// first frames (so TLS 1.3 session tickets arrive), then closes.
func handshake(b *testing.B, addr string, conf *tls.Config, wantResume bool) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	tc := tls.Client(c, conf)
	if err := tc.Handshake(); err != nil {
		b.Fatal(err)
	}
	if tc.ConnectionState().DidResume != wantResume {
		b.Fatalf("resumed=%v, want %v", tc.ConnectionState().DidResume, wantResume)
	}
	// The client speaks first in HTTP/2; write the preface so the server
	// answers with SETTINGS, then read once: tickets ride with it.
	_, _ = tc.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"))
	_ = tc.SetReadDeadline(time.Now().Add(2 * time.Second))
	var buf [512]byte
	_, _ = tc.Read(buf[:])
}
