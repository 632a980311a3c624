package mtls_test

import (
	"crypto/tls"
	"fmt"
	"net/netip"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/mtls"
	"github.com/kvgate/kvgate/mtls/spiffetest"
)

func ExampleCompileAuthz() {
	a, err := mtls.CompileAuthz([]config.AuthorizationPolicy{{
		Name:   "only-gateway",
		Action: "ALLOW",
		Routes: []string{"default"},
		Rules: []config.AuthzRule{{
			From: []config.AuthzFrom{{Principals: []string{"cluster.local/ns/istio-system/sa/voice-gw"}}},
			To:   []config.AuthzTo{{Methods: []string{"POST"}, Paths: []string{"/v1/*"}}},
		}},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	r := &mtls.AuthzRequest{
		Principal: "spiffe://cluster.local/ns/istio-system/sa/voice-gw",
		SourceIP:  netip.MustParseAddr("10.0.0.7"),
		Method:    "POST",
		Path:      "/v1/chat/completions",
	}
	fmt.Println(a.Check("default", "agent-v1", r))
	r.Principal = "spiffe://cluster.local/ns/batch/sa/worker"
	fmt.Println(a.Check("default", "agent-v1", r))
	// Output:
	// {true only-gateway allow}
	// {false  no-allow-match}
}

func ExampleCompileAuthz_errors() {
	_, err := mtls.CompileAuthz([]config.AuthorizationPolicy{{
		Action: "DENY",
		Rules:  []config.AuthzRule{{From: []config.AuthzFrom{{IPBlocks: []string{"10.0.0/8"}}}}},
	}})
	fmt.Println(err)
	// Output:
	// authorization[0].rules[0].from[0].ipBlocks[0]: "10.0.0/8" is not a CIDR; write it like 10.0.0.0/8
}

func ExampleServerTLS() {
	// In production ids comes from mtls.OpenIdentity(ctx, cfg.Identity, log).
	ca := spiffetest.NewCA("example.org")
	ids := spiffetest.NewSource(ca.SVID("spiffe://example.org/ns/ai/sa/kvgate"), ca.Bundle())

	cfg, err := mtls.ServerTLS(&config.ListenerTLS{SPIFFE: true, ClientAuth: "require"}, ids, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg.NextProtos = []string{"h2", "http/1.1"}
	fmt.Println(cfg.MinVersion == tls.VersionTLS12, cfg.ClientAuth)
	// Output: true RequireAnyClientCert
}

func ExampleForwardedClientCert() {
	fmt.Println(mtls.ForwardedClientCert("spiffe://cluster.local/ns/voice/sa/gw", "spiffe://cluster.local/ns/ai/sa/kvgate"))
	// Output: By=spiffe://cluster.local/ns/ai/sa/kvgate;URI=spiffe://cluster.local/ns/voice/sa/gw
}
