package mtls_test

import (
	"net/netip"
	"testing"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/mtls"
)

// FuzzCompileAuthz feeds one arbitrary string to every parsed field of a policy: compiling
// must never panic, and a policy that compiles must be checkable.
func FuzzCompileAuthz(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "10.0.0/8", "::1", "/v1/*", "*", "*.json", "8443", "request.headers[x]", "source.ip", "a*b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := []config.AuthorizationPolicy{{
			Name: "f", Action: "ALLOW",
			Rules: []config.AuthzRule{{
				From: []config.AuthzFrom{{Principals: []string{s}, IPBlocks: []string{s}, NotNamespaces: []string{s}}},
				To:   []config.AuthzTo{{Paths: []string{s}, Hosts: []string{s}, Ports: []string{s}}},
				When: []config.AuthzCondition{{Key: s, Values: []string{s}}},
			}},
		}}
		a, err := mtls.CompileAuthz(p)
		if err != nil {
			return
		}
		a.Check("r", "p", &mtls.AuthzRequest{Principal: "spiffe://" + s, Path: s, Host: s, SourceIP: netip.MustParseAddr("10.0.0.1")})
	})
}
