package mtls

import (
	"crypto/tls"
	"errors"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// IdentitySource is the workload's SPIFFE identity: its current X.509 SVID and the X.509
// trust bundles of its own and federated trust domains.
//
// Contract: safe for concurrent use; every call returns the latest values, so a rotated SVID
// or a changed bundle is visible to the next handshake without rebuilding any tls.Config.
// GetX509SVID never returns (nil, nil). GetX509BundleForTrustDomain returns an error for a
// trust domain it has no bundle for. *WorkloadSource, *SVIDFiles and go-spiffe's
// *workloadapi.X509Source satisfy it.
type IdentitySource interface {
	x509svid.Source
	x509bundle.Source
}

// svidCertificate converts the source's current SVID into a certificate to present.
func svidCertificate(ids IdentitySource) (*tls.Certificate, error) {
	svid, err := ids.GetX509SVID()
	if err != nil {
		return nil, err
	}
	if svid == nil || len(svid.Certificates) == 0 {
		return nil, errors.New("mtls: identity source has no SVID yet")
	}
	c := &tls.Certificate{PrivateKey: svid.PrivateKey, Leaf: svid.Certificates[0]}
	c.Certificate = make([][]byte, len(svid.Certificates))
	for i, x := range svid.Certificates {
		c.Certificate[i] = x.Raw
	}
	return c, nil
}
