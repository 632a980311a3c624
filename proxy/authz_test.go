package proxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/mtls"
	"github.com/kvgate/kvgate/mtls/spiffetest"
)

// authzYAML: route "api" (POST /v1/*) and route "open" (/public/*), both to
// the echo backend, with an ALLOW policy for the gateway on "api", an ALLOW
// for anyone on /public/ of "open", and a DENY on a header.
func authzYAML(backendAddr string) string {
	return fmt.Sprintf(`routes:
  - name: open
    matches: [{path: {type: PathPrefix, value: /public/}}]
    backends: [{pool: b}]
  - name: api
    backends: [{pool: b}]
pools:
  - {name: b, endpoints: [%q]}
authorization:
  - name: block-debug
    action: DENY
    rules: [{when: [{key: "request.headers[x-debug]", values: ["1"]}]}]
  - name: gateway-only
    action: ALLOW
    routes: [api]
    rules:
      - from: [{principals: ["example.org/ns/voice/sa/gateway"]}]
        to: [{methods: [GET, POST], paths: ["/v1/*"]}]
  - name: public
    action: ALLOW
    routes: [open]
    rules: [{}]
`, backendAddr)
}

func TestMTLSInAndAuthorization(t *testing.T) {
	env := newIDEnv(t)
	yaml := env.identityYAML() + "listeners:\n" + mtlsListener("req", "require") + mtlsListener("opt", "request") + authzYAML(echoXFCC(t))
	p := runProxy(t, yaml, nil)
	base := func(l string) string { return "https://" + p.Listener(l).Addr().String() }
	gateway := spiffeTLS(t, env.ca.SVID(allowedID), env.ca.Bundle())
	stranger := spiffeTLS(t, env.ca.SVID(strangerID), env.ca.Bundle())
	anonymous := spiffeTLS(t, nil)
	cases := []struct {
		name     string
		conf     func() *http.Client
		listener string
		path     string
		hdr      []string
		code     int
		body     string // substring expected in the body
	}{
		{"allowed client passes", func() *http.Client { return h1Client(gateway, false) }, "req", "/v1/models", nil, 200, "URI=" + allowedID},
		{"allowed client over h2", func() *http.Client { return h2Client(gateway) }, "req", "/v1/models", nil, 200, "URI=" + allowedID},
		{"wrong id gets 403", func() *http.Client { return h1Client(stranger, false) }, "req", "/v1/models", nil, 403, "no ALLOW authorization policy"},
		{"allowed id, wrong path", func() *http.Client { return h1Client(gateway, false) }, "req", "/admin", nil, 403, "authz_denied"},
		{"deny policy named", func() *http.Client { return h2Client(gateway) }, "req", "/v1/models", []string{"x-debug", "1"}, 403, `\"block-debug\"`},
		{"request: anonymous reaches public", func() *http.Client { return h1Client(anonymous, false) }, "opt", "/public/x", nil, 200, ""},
		{"request: anonymous refused by policy", func() *http.Client { return h1Client(anonymous, false) }, "opt", "/v1/models", nil, 403, "anonymous"},
		{"request: certificate still verified and used", func() *http.Client { return h2Client(gateway) }, "opt", "/v1/models", nil, 200, "URI=" + allowedID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body, _, err := get(c.conf(), base(c.listener)+c.path, c.hdr...)
			if err != nil {
				t.Fatal(err)
			}
			if code != c.code || !strings.Contains(body, c.body) {
				t.Fatalf("got %d %q; want %d containing %q", code, body, c.code, c.body)
			}
			if code == 403 && !strings.Contains(body, `"type":"permission_error"`) {
				t.Fatalf("403 body is not OpenAI-shaped: %s", body)
			}
		})
	}
	t.Run("no certificate refused at the handshake under require", func(t *testing.T) {
		_, _, _, err := get(h1Client(anonymous, true), base("req")+"/v1/models")
		if err == nil {
			t.Fatal("a client without a certificate got through")
		}
	})
	t.Run("untrusted certificate refused under request", func(t *testing.T) {
		other := spiffetest.NewCA("example.org")
		_, _, _, err := get(h1Client(spiffeTLS(t, other.SVID(allowedID), env.ca.Bundle()), true), base("opt")+"/public/x")
		if err == nil {
			t.Fatal("a certificate from an untrusted CA was accepted")
		}
	})
	t.Run("denials counted by policy", func(t *testing.T) {
		_, m := mustGet(t, http.DefaultClient, "http://"+p.AdminAddr().String()+"/metrics")
		for _, want := range []string{`kvgate_authz_denied_total{policy="block-debug"} 1`, `kvgate_authz_denied_total{policy=""} 3`} {
			if !strings.Contains(m, want) {
				t.Fatalf("metrics lack %s:\n%s", want, grepLines(m, "authz"))
			}
		}
	})
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A handful of policy cases through the proxy (the full table is in package mtls).
func TestAuthorizationTable(t *testing.T) {
	yaml := fmt.Sprintf(`accessLog: {path: "off"}
listeners:
  - {name: plain, address: "127.0.0.1:0"}
routes:
  - {name: r, backends: [{pool: b}]}
pools:
  - {name: b, endpoints: [%q]}
authorization:
  - name: no-delete
    action: DENY
    rules: [{to: [{methods: [DELETE]}]}]
  - name: lan-or-key
    action: ALLOW
    rules:
      - from: [{ipBlocks: ["10.0.0.0/8"]}]
      - to: [{paths: ["/v1/*"], hosts: ["api.local"]}]
        when: [{key: "request.headers[x-api-key]", values: ["k1", "k2"]}]
      - to: [{paths: ["/healthz"]}]
`, echoXFCC(t))
	p := runProxy(t, yaml, nil)
	url := "http://" + p.Listener("plain").Addr().String()
	cases := []struct {
		method, host, path string
		hdr                []string
		code               int
	}{
		{"GET", "api.local", "/v1/models", []string{"X-Api-Key", "k2"}, 200},
		{"GET", "api.local", "/v1/models", []string{"X-Api-Key", "nope"}, 403},
		{"GET", "api.local", "/v1/models", nil, 403},
		{"GET", "other.local", "/v1/models", []string{"X-Api-Key", "k1"}, 403},
		{"GET", "api.local", "/healthz", nil, 200},
		{"DELETE", "api.local", "/healthz", nil, 403}, // DENY first
		{"POST", "api.local", "/v2/x", []string{"X-Api-Key", "k1"}, 403},
	}
	c := &http.Client{Timeout: 10 * time.Second}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.host+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, url+tc.path, nil)
			req.Host = tc.host
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				req.Header.Set(tc.hdr[i], tc.hdr[i+1])
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("got %d %s; want %d", resp.StatusCode, b, tc.code)
			}
		})
	}
}

// A session resumed after the trust bundle dropped the client's CA must be
// refused: verification runs on resumed handshakes too.
func TestResumptionCannotBypassVerification(t *testing.T) {
	env := newIDEnv(t)
	p := runProxy(t, env.identityYAML()+"listeners:\n"+mtlsListener("m", "require")+simple(echoXFCC(t)), nil)
	url := "https://" + p.Listener("m").Addr().String() + "/"
	conf := spiffeTLS(t, env.ca.SVID(allowedID), env.ca.Bundle())
	conf.ClientSessionCache = newTestSessionCache()
	client := h1Client(conf, true)
	code, body, resp, err := get(client, url)
	if err != nil || code != 200 || resp.TLS.DidResume {
		t.Fatalf("first handshake: %d %v resumed=%v", code, err, resp != nil && resp.TLS.DidResume)
	}
	code, body, resp, err = get(client, url)
	if err != nil || code != 200 || !resp.TLS.DidResume || !strings.Contains(body, "URI="+allowedID) {
		t.Fatalf("resumed handshake: %d %q %v resumed=%v; want 200 with the peer ID", code, body, err, resp != nil && resp.TLS.DidResume)
	}
	// Rotate the trust bundle to a new CA; wait until a probe from it is let in.
	newCA := spiffetest.NewCA("example.org")
	env.api.SetBundles(newCA.Bundle())
	probe := h1Client(spiffeTLS(t, newCA.SVID(allowedID), env.ca.Bundle()), true)
	for i := 0; i < 1000; i++ {
		if _, _, _, err = get(probe, url); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("bundle change never applied: %v", err)
	}
	if code, _, resp, err := get(client, url); err == nil {
		t.Fatalf("resumed session of a no longer trusted client got %d (resumed=%v)", code, resp.TLS.DidResume)
	}
}

func TestUpstreamSPIFFE(t *testing.T) {
	for _, proto := range []string{"http1", "h2"} {
		t.Run(proto, func(t *testing.T) {
			env := newIDEnv(t)
			vllm := "spiffe://example.org/ns/models/sa/vllm"
			right := tlsBackend(t, env.ca.SVID(vllm), env)
			wrong := tlsBackend(t, env.ca.SVID(strangerID), env)
			logs := &logBuffer{}
			yaml := env.identityYAML() + fmt.Sprintf(`listeners:
  - {name: plain, address: "127.0.0.1:0"}
routes:
  - name: good
    matches: [{path: {type: PathPrefix, value: /good}}]
    backends: [{pool: good}]
  - name: bad
    backends: [{pool: bad}]
pools:
  - {name: good, endpoints: [%q], protocol: %s, tls: {spiffeID: %q}}
  - {name: bad, endpoints: [%q], protocol: %s, tls: {spiffeID: %q}}
`, right, proto, vllm, wrong, proto, vllm)
			p := runProxy(t, yaml, logs)
			base := "http://" + p.Listener("plain").Addr().String()
			resp, body := mustGet(t, http.DefaultClient, base+"/good/a%2Cb?q=1")
			if resp.StatusCode != 200 || body != proxyID+" /good/a%2Cb?q=1" {
				t.Fatalf("right upstream: %d %q; want 200 and the backend seeing %s", resp.StatusCode, body, proxyID)
			}
			resp, body = mustGet(t, http.DefaultClient, base+"/bad")
			if resp.StatusCode != 502 || !strings.Contains(body, `"code":"upstream_identity_mismatch"`) {
				t.Fatalf("wrong upstream: %d %s", resp.StatusCode, body)
			}
			l := logs.String()
			if !strings.Contains(l, "expected="+vllm) || !strings.Contains(l, "presented="+strangerID) {
				t.Fatalf("log lacks expected vs presented:\n%s", l)
			}
		})
	}
}

// tlsBackend serves svid over TLS (HTTP/1.1 and h2), requires a client SVID
// of env's trust domain, and answers with the client's SPIFFE ID.
func tlsBackend(t *testing.T, svid *x509svid.SVID, env *idEnv) string {
	t.Helper()
	conf, err := mtls.ServerTLS(&config.ListenerTLS{SPIFFE: true, ClientAuth: "require"},
		spiffetest.NewSource(svid, env.ca.Bundle()), nil)
	if err != nil {
		t.Fatal(err)
	}
	conf.NextProtos = []string{"h2", "http/1.1"}
	return tlsServe(t, conf, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, mtls.PeerID(r.TLS), " ", r.URL.RequestURI())
	}))
}

func TestForwardedClientCert(t *testing.T) {
	env := newIDEnv(t)
	yaml := env.identityYAML() + "listeners:\n" + mtlsListener("strip", "require") +
		"  - name: keep\n    address: \"127.0.0.1:0\"\n    trustForwardedClientCert: true\n    tls: {spiffe: true, clientAuth: require}\n" +
		simple(echoXFCC(t))
	p := runProxy(t, yaml, nil)
	gateway := h2Client(spiffeTLS(t, env.ca.SVID(allowedID), env.ca.Bundle()))
	forged := "By=spiffe://evil.org/x;URI=spiffe://evil.org/admin"
	ours := "By=" + proxyID + ";URI=" + allowedID
	cases := []struct{ listener, sent, want string }{
		{"strip", "", ours},
		{"strip", forged, ours},
		{"keep", forged, forged + " | " + ours},
	}
	for _, c := range cases {
		var hdr []string
		if c.sent != "" {
			hdr = []string{"X-Forwarded-Client-Cert", c.sent}
		}
		code, body, _, err := get(gateway, "https://"+p.Listener(c.listener).Addr().String()+"/", hdr...)
		if err != nil || code != 200 || body != c.want {
			t.Fatalf("%s with %q: %d %q %v; want %q", c.listener, c.sent, code, body, err, c.want)
		}
	}
}

func newTestSessionCache() tls.ClientSessionCache { return tls.NewLRUClientSessionCache(8) }

// tlsServe serves h over TLS (h2 and HTTP/1.1 by conf.NextProtos) on loopback.
func tlsServe(t *testing.T, conf *tls.Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: h, TLSConfig: conf, ErrorLog: discardLog}
	go func() { _ = s.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = s.Close() })
	return ln.Addr().String()
}
