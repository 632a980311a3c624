package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/kvgate/kvgate/mtls/spiffetest"
)

func h3Client(t *testing.T, conf *tls.Config) *http.Client {
	tr := &http3.Transport{TLSClientConfig: conf.Clone()}
	t.Cleanup(func() { _ = tr.Close() })
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}
}

func TestHTTP3EndToEnd(t *testing.T) {
	env := newIDEnv(t)
	yaml := env.identityYAML() + "listeners:\n" + mtlsListener("m", "require", ", http3") + simple(echoXFCC(t))
	p := runProxy(t, yaml, nil)
	addr := p.Listener("m").Addr().String()
	url := "https://" + addr + "/v1/models"
	gateway := spiffeTLS(t, env.ca.SVID(allowedID), env.ca.Bundle())
	altSvc := fmt.Sprintf(`h3=":%d"; ma=86400`, p.Listener("m").port())

	code, body, resp, err := get(h3Client(t, gateway), url)
	if err != nil || code != 200 {
		t.Fatalf("http3: %d %v", code, err)
	}
	if resp.Proto != "HTTP/3.0" || resp.TLS.NegotiatedProtocol != "h3" {
		t.Fatalf("proto %s alpn %s; want HTTP/3.0 over h3", resp.Proto, resp.TLS.NegotiatedProtocol)
	}
	if body != "By="+proxyID+";URI="+allowedID {
		t.Fatalf("upstream saw xfcc %q over HTTP/3; want the verified peer", body)
	}
	if v := resp.Header.Get("Alt-Svc"); v != "" {
		t.Fatalf("HTTP/3 response advertises Alt-Svc %q", v)
	}
	for name, c := range map[string]*http.Client{"h1": h1Client(gateway, false), "h2": h2Client(gateway)} {
		_, _, resp, err := get(c, url)
		if err != nil {
			t.Fatal(name, err)
		}
		if got := resp.Header.Get("Alt-Svc"); got != altSvc {
			t.Fatalf("%s Alt-Svc %q; want %q", name, got, altSvc)
		}
	}
	if _, _, _, err := get(h3Client(t, spiffeTLS(t, nil)), url); err == nil {
		t.Fatal("http3 client without a certificate got through clientAuth: require")
	}
	stranger := spiffeTLS(t, spiffetest.NewCA("example.org").SVID(allowedID), env.ca.Bundle())
	if _, _, _, err := get(h3Client(t, stranger), url); err == nil {
		t.Fatal("http3 client with an untrusted certificate got through")
	}
}

func TestHTTP3AuthorizationAndLargeBody(t *testing.T) {
	env := newIDEnv(t)
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d", n)
	}))
	yaml := env.identityYAML() + "listeners:\n" + mtlsListener("m", "request", ", http3") + authzYAML(addr)
	p := runProxy(t, yaml, nil)
	base := "https://" + p.Listener("m").Addr().String()
	code, body, _, err := get(h3Client(t, spiffeTLS(t, env.ca.SVID(strangerID), env.ca.Bundle())), base+"/v1/models")
	if err != nil || code != 403 || !strings.Contains(body, "authz_denied") {
		t.Fatalf("stranger over http3: %d %q %v", code, body, err)
	}
	c := h3Client(t, spiffeTLS(t, env.ca.SVID(allowedID), env.ca.Bundle()))
	const size = 3 << 20
	resp, err := c.Post(base+"/v1/chat", "application/octet-stream", strings.NewReader(strings.Repeat("x", size)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != fmt.Sprint(size) {
		t.Fatalf("POST over http3: %d %q", resp.StatusCode, b)
	}
}

func TestHTTP3Drain(t *testing.T) {
	env := newIDEnv(t)
	arrived, release := make(chan struct{}), make(chan struct{})
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		fmt.Fprint(w, "finished")
	}))
	p, err := buildProxy(env.identityYAML()+"listeners:\n"+mtlsListener("m", "none", ", http3")+simple(addr), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	url := "https://" + p.Listener("m").Addr().String() + "/"
	type result struct {
		code int
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		code, body, _, err := get(h3Client(t, spiffeTLS(t, nil)), url)
		got <- result{code, body, err}
	}()
	<-arrived
	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		drained <- p.Shutdown(ctx)
	}()
	for i := 0; !p.draining.Load() && i < 5000; i++ {
		time.Sleep(time.Millisecond)
	}
	close(release)
	if r := <-got; r.err != nil || r.code != 200 || r.body != "finished" {
		t.Fatalf("in-flight HTTP/3 request during drain: %d %q %v", r.code, r.body, r.err)
	}
	if err := <-drained; err != nil {
		t.Fatalf("drain: %v", err)
	}
	late := h3Client(t, spiffeTLS(t, nil))
	late.Timeout = 300 * time.Millisecond
	if _, _, _, err := get(late, url); err == nil {
		t.Fatal("http3 still answers after shutdown")
	}
}

func TestUDPBufferAdvice(t *testing.T) {
	files := func(r, w string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			v := map[string]string{"/proc/sys/net/core/rmem_max": r, "/proc/sys/net/core/wmem_max": w}[name]
			if v == "" {
				return nil, fs.ErrNotExist
			}
			return []byte(v + "\n"), nil
		}
	}
	cases := []struct {
		name, r, w string
		want       []string
	}{
		{"both small", "212992", "212992", []string{"sysctl -w net.core.rmem_max=7500000", "sysctl -w net.core.wmem_max=7500000"}},
		{"read small", "4096", "8000000", []string{"sysctl -w net.core.rmem_max=7500000"}},
		{"large enough", "7500000", "16777216", nil},
		{"no proc", "", "", nil},
		{"garbage", "lots", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := udpBufferAdvice(files(c.r, c.w)); !slices.Equal(got, c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestListenerCertFileReload(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := ca.Leaf("localhost")
	if err := spiffetest.WriteKeyPair(crt, key, first); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`accessLog: {path: "off"}
listeners:
  - name: t
    address: "127.0.0.1:0"
    protocols: [http1, http2, http3]
    tls: {certFile: %q, keyFile: %q}
%s`, crt, key, simple(echoXFCC(t)))
	p := runProxy(t, yaml, nil)
	url := "https://" + p.Listener("t").Addr().String() + "/"
	conf := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	serial := func(c *http.Client) string {
		code, _, resp, err := get(c, url)
		if err != nil || code != 200 {
			t.Fatalf("request: %d %v", code, err)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	if got := serial(h1Client(conf, true)); got != first.Leaf.SerialNumber.String() {
		t.Fatalf("served serial %s; want the first certificate", got)
	}
	second := ca.Leaf("localhost")
	if err := spiffetest.WriteKeyPair(crt, key, second); err != nil {
		t.Fatal(err)
	}
	want := second.Leaf.SerialNumber.String()
	var got string
	for i := 0; i < 1000 && got != want; i++ {
		if got = serial(h1Client(conf, true)); got != want {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if got != want {
		t.Fatalf("new handshakes still get serial %s after the files changed; want %s", got, want)
	}
	if got := serial(h3Client(t, conf)); got != want { // QUIC shares the certificate source
		t.Fatalf("http3 serves serial %s; want %s", got, want)
	}
}

// TestHTTP3ConnectionCap: QUIC connections hold slots of the global
// maxConnections cap like TCP ones; one over the cap waits, unserved, until
// a slot frees.
func TestHTTP3ConnectionCap(t *testing.T) {
	env := newIDEnv(t)
	yaml := env.identityYAML() + "listeners:\n" + mtlsListener("m", "require", ", http3") +
		simple(echoXFCC(t), "limits: {maxConnections: 1}")
	p := runProxy(t, yaml, nil)
	url := "https://" + p.Listener("m").Addr().String() + "/v1/models"
	gateway := spiffeTLS(t, env.ca.SVID(allowedID), env.ca.Bundle())

	first := &http3.Transport{TLSClientConfig: gateway.Clone()}
	t.Cleanup(func() { _ = first.Close() })
	if code, _, _, err := get(&http.Client{Timeout: 10 * time.Second, Transport: first}, url); err != nil || code != 200 {
		t.Fatalf("first connection: %d %v", code, err)
	}
	if n := len(p.connSem); n != 1 {
		t.Fatalf("an open HTTP/3 connection holds %d slots of the cap, want 1", n)
	}
	second := make(chan error, 1)
	go func() {
		code, _, _, err := get(h3Client(t, gateway), url)
		if err == nil && code != 200 {
			err = fmt.Errorf("status %d", code)
		}
		second <- err
	}()
	select {
	case err := <-second:
		t.Fatalf("a second HTTP/3 connection was served over maxConnections: 1 (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	_ = first.Close()
	if err := <-second; err != nil {
		t.Fatalf("after the first connection closed: %v", err)
	}
}
