package mtls_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// result is what one side saw of a handshake.
type result struct {
	state tls.ConnectionState
	err   error
}

// handshake runs one TLS handshake over a real loopback TCP connection. The server writes
// "ok" after a successful handshake, so a client whose certificate the server rejected sees
// an error even under TLS 1.3 (where the client finishes first).
func handshake(t *testing.T, server, client *tls.Config) (srv, cli result) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, server)
		err = tc.Handshake()
		if err == nil {
			_, err = tc.Write([]byte("ok"))
		}
		done <- result{state: tc.ConnectionState(), err: err}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(c, client)
	err = tc.Handshake()
	if err == nil {
		buf := make([]byte, 2)
		_, err = io.ReadFull(tc, buf)
		if err == nil && string(buf) != "ok" {
			err = errors.New("unexpected server greeting")
		}
	}
	cli = result{state: tc.ConnectionState(), err: err}
	c.Close() // a client that failed early must not leave the server waiting
	return <-done, cli
}
