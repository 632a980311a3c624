package proxy

import (
	"bytes"
	"errors"
	"net"
	"runtime"
	"testing"
	"time"
)

// dialAside must behave as net.DialTimeout: a connection to a listening
// port, the dial error (wrapped by dialer.dial as a dialError) otherwise.
func TestDialerDialAside(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		name, addr string
		ok         bool
	}{
		{"listening", ln.Addr().String(), true},
		{"refused", refused, false},
		{"bad address", "127.0.0.1:notaport", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &dialer{timeout: 2 * time.Second, live: &connSet{}}
			c, err := d.dial(tc.addr)
			if !tc.ok {
				var de *dialError
				if err == nil || !errors.As(err, &de) || c != nil {
					t.Fatalf("dial %s = %v, %v; want nil and a dialError", tc.addr, c, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("dial %s: %v", tc.addr, err)
			}
			defer c.Close()
			if _, ok := c.(*idleConn); !ok {
				t.Fatalf("dial returned %T, want *idleConn", c)
			}
			if c.RemoteAddr().String() != tc.addr {
				t.Fatalf("connected to %s, want %s", c.RemoteAddr(), tc.addr)
			}
		})
	}
}

// goid is the current goroutine's id, from the first line of its stack.
func goid() string {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	return string(b[:bytes.IndexByte(b, ' ')])
}

// The dial must not run on the request's goroutine: net's dial path grew
// that goroutine's stack to 16 KiB, kept for the life of a stream.
func TestDialerDialsOnOwnGoroutine(t *testing.T) {
	var dialedOn string
	old := dialTCP
	dialTCP = func(network, addr string, timeout time.Duration) (net.Conn, error) {
		dialedOn = goid()
		return nil, errors.New("no dial in this test")
	}
	defer func() { dialTCP = old }()
	d := &dialer{timeout: time.Second, live: &connSet{}}
	if _, err := d.dial("127.0.0.1:1"); err == nil {
		t.Fatal("dial succeeded")
	}
	if me := goid(); dialedOn == "" || dialedOn == me {
		t.Fatalf("dialled on goroutine %q, the caller is %q: want another goroutine", dialedOn, me)
	}
}
