package mtls_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/mtls"
	"github.com/kvgate/kvgate/mtls/spiffetest"
)

const (
	serverID = "spiffe://example.org/ns/ai/sa/kvgate"
	clientID = "spiffe://example.org/ns/voice/sa/gw"
)

func spiffeServer(t *testing.T, clientAuth string, ids mtls.IdentitySource) *tls.Config {
	t.Helper()
	cfg, err := mtls.ServerTLS(&config.ListenerTLS{SPIFFE: true, ClientAuth: clientAuth}, ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func spiffeClient(t *testing.T, want string, ids mtls.IdentitySource) *tls.Config {
	t.Helper()
	cfg, err := mtls.ClientTLS(&config.UpstreamTLS{SPIFFEID: want}, ids)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestServerTLSBaseline(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	cfg := spiffeServer(t, "", spiffetest.NewSource(ca.SVID(serverID), ca.Bundle()))
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x", cfg.MinVersion)
	}
	for _, id := range cfg.CipherSuites {
		name := tls.CipherSuiteName(id)
		if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")) {
			t.Errorf("suite %s is not ECDHE+AEAD", name)
		}
	}
	// A TLS 1.2 client offering only CBC suites must be refused.
	cli := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}
	if s, _ := handshake(t, cfg, cli); s.err == nil {
		t.Error("CBC-only TLS 1.2 client was accepted")
	}
	cli = &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}
	if s, _ := handshake(t, cfg, cli); s.err == nil {
		t.Error("TLS 1.1 client was accepted")
	}
}

func TestSPIFFEMutualTLS(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	other := spiffetest.NewCA("evil.org")
	srvIDs := spiffetest.NewSource(ca.SVID(serverID), ca.Bundle())
	good := spiffetest.NewSource(ca.SVID(clientID), ca.Bundle())
	untrusted := spiffetest.NewSource(other.SVID("spiffe://evil.org/x"), ca.Bundle())
	noCert := &tls.Config{InsecureSkipVerify: true}

	tests := []struct {
		name       string
		clientAuth string
		client     *tls.Config
		wantErr    bool
		wantPeer   string
	}{
		{"require, trusted SVID", "require", spiffeClient(t, serverID, good), false, clientID},
		{"require, untrusted domain", "require", spiffeClient(t, serverID, untrusted), true, ""},
		{"require, no certificate", "require", noCert, true, ""},
		{"request, no certificate is anonymous", "request", noCert, false, ""},
		{"request, trusted SVID", "request", spiffeClient(t, serverID, good), false, clientID},
		{"request, untrusted SVID is refused", "request", spiffeClient(t, serverID, untrusted), true, ""},
		{"none, certificate ignored", "none", spiffeClient(t, serverID, good), false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := handshake(t, spiffeServer(t, tc.clientAuth, srvIDs), tc.client)
			if gotErr := s.err != nil || c.err != nil; gotErr != tc.wantErr {
				t.Fatalf("server err %v, client err %v; want error %v", s.err, c.err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if got := mtls.PeerID(&s.state); got != tc.wantPeer {
				t.Errorf("server PeerID = %q, want %q", got, tc.wantPeer)
			}
			if got := mtls.PeerID(&c.state); got != serverID {
				t.Errorf("client PeerID = %q, want %q", got, serverID)
			}
		})
	}
}

// TestVerificationRunsOnResumption: a client resumes a TLS session after the server stopped
// trusting its trust domain. The control run proves that resumption does happen; the real
// run proves the resumed handshake is refused, so verification was not skipped.
func TestVerificationRunsOnResumption(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			ca := spiffetest.NewCA("example.org")
			peer := spiffetest.NewCA("peer.org")
			srvIDs := spiffetest.NewSource(ca.SVID(serverID), ca.Bundle(), peer.Bundle())
			srv := spiffeServer(t, "require", srvIDs)
			srv.MaxVersion = version
			cli := spiffeClient(t, serverID, spiffetest.NewSource(peer.SVID("spiffe://peer.org/app"), ca.Bundle()))
			cli.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			cli.ServerName = "kvgate.test" // the session cache key; ports differ per handshake

			if s, c := handshake(t, srv, cli); s.err != nil || c.err != nil {
				t.Fatalf("first handshake: %v / %v", s.err, c.err)
			}
			s, c := handshake(t, srv, cli)
			if s.err != nil || c.err != nil || !s.state.DidResume {
				t.Fatalf("control: resumed=%v errs %v / %v", s.state.DidResume, s.err, c.err)
			}
			srvIDs.Set(ca.SVID(serverID), ca.Bundle()) // peer.org no longer trusted
			s, _ = handshake(t, srv, cli)
			if s.err == nil {
				t.Fatalf("resumed session from an untrusted domain accepted (resumed=%v)", s.state.DidResume)
			}
		})
	}
}

func TestSPIFFERotationVisibleToNextHandshake(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	ids := spiffetest.NewSource(ca.SVID(serverID), ca.Bundle())
	srv := spiffeServer(t, "none", ids)
	client, err := mtls.ClientTLS(&config.UpstreamTLS{TrustDomain: "example.org"}, spiffetest.NewSource(ca.SVID(clientID), ca.Bundle()))
	if err != nil {
		t.Fatal(err)
	}
	_, c := handshake(t, srv, client)
	if got := mtls.PeerID(&c.state); c.err != nil || got != serverID {
		t.Fatalf("before: %q %v", got, c.err)
	}
	rotated := "spiffe://example.org/ns/ai/sa/kvgate-2"
	ids.Set(ca.SVID(rotated), ca.Bundle())
	_, c = handshake(t, srv, client)
	if got := mtls.PeerID(&c.state); c.err != nil || got != rotated {
		t.Fatalf("after rotation: %q %v", got, c.err)
	}
}

func TestClientTLSIdentityErrors(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	other := spiffetest.NewCA("other.org")
	srv := spiffeServer(t, "none", spiffetest.NewSource(ca.SVID(serverID), ca.Bundle(), other.Bundle()))
	mine := spiffetest.NewSource(other.SVID("spiffe://other.org/me"), ca.Bundle(), other.Bundle())
	tests := []struct {
		up      config.UpstreamTLS
		wantErr []string
	}{
		{config.UpstreamTLS{SPIFFEID: serverID}, nil},
		{config.UpstreamTLS{SPIFFEID: "spiffe://example.org/ns/ai/sa/vllm"}, []string{"expected spiffe://example.org/ns/ai/sa/vllm", "presented " + serverID}},
		{config.UpstreamTLS{TrustDomain: "example.org"}, nil},
		{config.UpstreamTLS{TrustDomain: "other.org"}, []string{"trust domain other.org", "presented " + serverID}},
	}
	for _, tc := range tests {
		cli, err := mtls.ClientTLS(&tc.up, mine)
		if err != nil {
			t.Fatal(err)
		}
		_, c := handshake(t, srv, cli)
		if tc.wantErr == nil {
			if c.err != nil {
				t.Errorf("%+v: %v", tc.up, c.err)
			}
			continue
		}
		if c.err == nil {
			t.Errorf("%+v: accepted", tc.up)
			continue
		}
		for _, w := range tc.wantErr {
			if !strings.Contains(c.err.Error(), w) {
				t.Errorf("%+v: error %q lacks %q", tc.up, c.err, w)
			}
		}
	}
}

func TestClientTLSUntrustedServer(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	rogue := spiffetest.NewCA("example.org") // same name, different key
	srv := spiffeServer(t, "none", spiffetest.NewSource(rogue.SVID(serverID), rogue.Bundle()))
	cli := spiffeClient(t, serverID, spiffetest.NewSource(ca.SVID(clientID), ca.Bundle()))
	if _, c := handshake(t, srv, cli); c.err == nil || !strings.Contains(c.err.Error(), "not a trusted SVID") {
		t.Fatalf("rogue server: %v", c.err)
	}
}

func TestPlainTLSWithClientCAFile(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	crt, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := spiffetest.WriteKeyPair(crt, key, ca.Leaf("srv.test")); err != nil {
		t.Fatal(err)
	}
	ccrt, ckey := filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key")
	if err := spiffetest.WriteKeyPair(ccrt, ckey, ca.Leaf("client.test")); err != nil {
		t.Fatal(err)
	}
	cf, err := mtls.NewCertFiles(crt, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	srv, err := mtls.ServerTLS(&config.ListenerTLS{CertFile: crt, KeyFile: key, ClientAuth: "require", ClientCAFile: caFile}, nil, cf)
	if err != nil {
		t.Fatal(err)
	}
	withCert, err := mtls.ClientTLS(&config.UpstreamTLS{CAFile: caFile, ServerName: "srv.test", CertFile: ccrt, KeyFile: ckey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, c := handshake(t, srv, withCert); s.err != nil || c.err != nil {
		t.Fatalf("with client cert: %v / %v", s.err, c.err)
	}
	without, err := mtls.ClientTLS(&config.UpstreamTLS{CAFile: caFile, ServerName: "srv.test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := handshake(t, srv, without); s.err == nil {
		t.Fatal("client without certificate accepted under require")
	}
	wrongName, _ := mtls.ClientTLS(&config.UpstreamTLS{CAFile: caFile, ServerName: "other.test"}, nil)
	if _, c := handshake(t, srv, wrongName); c.err == nil {
		t.Fatal("wrong server name accepted")
	}
}

func TestTLSConfigErrors(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	ids := spiffetest.NewSource(ca.SVID(serverID), ca.Bundle())
	server := []struct {
		l    *config.ListenerTLS
		ids  mtls.IdentitySource
		want string
	}{
		{nil, nil, "no tls section"},
		{&config.ListenerTLS{SPIFFE: true}, nil, "no identity is configured"},
		{&config.ListenerTLS{}, nil, "certFile and keyFile"},
		{&config.ListenerTLS{SPIFFE: true, ClientAuth: "maybe"}, ids, "not none, request or require"},
		{&config.ListenerTLS{SPIFFE: true, ClientAuth: "require", ClientCAFile: "/nonexistent/ca.pem"}, ids, "clientCAFile"},
	}
	for _, tc := range server {
		if _, err := mtls.ServerTLS(tc.l, tc.ids, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ServerTLS(%+v): %v, want %q", tc.l, err, tc.want)
		}
	}
	client := []struct {
		t    config.UpstreamTLS
		ids  mtls.IdentitySource
		want string
	}{
		{config.UpstreamTLS{SPIFFEID: serverID}, nil, "needs an identity"},
		{config.UpstreamTLS{SPIFFEID: serverID, TrustDomain: "example.org"}, ids, "not both"},
		{config.UpstreamTLS{SPIFFEID: "http://x"}, ids, "spiffe://example.org/ns/NS/sa/SA"},
		{config.UpstreamTLS{TrustDomain: "Bad Domain"}, ids, "write it like example.org"},
		{config.UpstreamTLS{CAFile: "/nonexistent/ca.pem"}, nil, "caFile"},
		{config.UpstreamTLS{CertFile: "/nonexistent/c.pem"}, nil, "certFile"},
	}
	for _, tc := range client {
		if _, err := mtls.ClientTLS(&tc.t, tc.ids); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ClientTLS(%+v): %v, want %q", tc.t, err, tc.want)
		}
	}
	if cfg, err := mtls.ClientTLS(nil, nil); cfg != nil || err != nil {
		t.Errorf("ClientTLS(nil) = %v, %v", cfg, err)
	}
}

func TestPeerIDNil(t *testing.T) {
	if got := mtls.PeerID(nil); got != "" {
		t.Fatalf("PeerID(nil) = %q", got)
	}
	ca := spiffetest.NewCA("example.org")
	leaf := ca.Leaf("x.test")
	if got := mtls.PeerID(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf.Leaf}}); got != "" {
		t.Fatalf("PeerID(non-SPIFFE) = %q", got)
	}
}

func TestForwardedClientCert(t *testing.T) {
	tests := []struct{ peer, by, want string }{
		{clientID, serverID, "By=" + serverID + ";URI=" + clientID},
		{clientID, "", "URI=" + clientID},
		{"", serverID, "By=" + serverID},
		{"", "", ""},
		{"spiffe://a/b;c", "", `URI="spiffe://a/b;c"`},
	}
	for _, tc := range tests {
		if got := mtls.ForwardedClientCert(tc.peer, tc.by); got != tc.want {
			t.Errorf("ForwardedClientCert(%q, %q) = %q, want %q", tc.peer, tc.by, got, tc.want)
		}
	}
}
