package proxy

import (
	"crypto/tls"
	"fmt"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/mtls"
)

// upstreamTLS builds the dialing TLS config of a pool with mtls.ClientTLS:
// tls.spiffeID / tls.trustDomain dial with the workload SVID and authorize the
// server's SPIFFE ID on every handshake (resumed ones included); caFile,
// serverName and certFile/keyFile make plain TLS. No tls section: nil.
// A SPIFFE verification failure surfaces as *identityError so the core can
// answer 502 and log expected versus presented.
func upstreamTLS(pc config.Pool, ids mtls.IdentitySource) (*tls.Config, error) {
	conf, err := mtls.ClientTLS(pc.TLS, ids)
	if err != nil {
		return nil, fmt.Errorf("proxy: pool %q tls: %w", pc.Name, err)
	}
	if conf == nil || conf.VerifyConnection == nil {
		return conf, nil
	}
	verify := conf.VerifyConnection
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := verify(cs); err != nil {
			return &identityError{presented: mtls.PeerID(&cs), err: err}
		}
		return nil
	}
	return conf, nil
}

// identityError is an upstream that failed SPIFFE verification: an untrusted
// SVID or a SPIFFE ID other than the pool's tls.spiffeID / trustDomain.
type identityError struct {
	presented string // the server's SPIFFE ID, "" when it had none
	err       error  // from package mtls; says expected versus presented
}

func (e *identityError) Error() string { return e.err.Error() }
func (e *identityError) Unwrap() error { return e.err }

// identityFailure answers 502 for an upstream whose identity was refused and
// logs what was expected against what was presented.
func identityFailure(x *Exchange, ie *identityError) *Reply {
	t := x.ep.pool
	want := ""
	if s := x.proxy.snap.Load(); s != nil {
		if pl := s.pools[t]; pl != nil && pl.cfg.TLS != nil {
			want = pl.cfg.TLS.SPIFFEID
			if want == "" {
				want = "any ID in trust domain " + pl.cfg.TLS.TrustDomain
			}
		}
	}
	x.proxy.log.Warn("upstream identity refused", "pool", x.pool, "endpoint", x.ep.addr,
		"expected", want, "presented", ie.presented, "err", ie.err.Error(), "request_id", x.requestID)
	return x.fail(502, errUpstream, codeUpstreamIdentityMismatch,
		"endpoint "+x.ep.addr+" in pool "+x.pool+" failed identity verification: "+ie.err.Error())
}
