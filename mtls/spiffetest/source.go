package spiffetest

import (
	"errors"
	"sync"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Source is an in-memory identity source (an x509svid.Source and x509bundle.Source) whose SVID
// and bundles a test changes at will. Safe for concurrent use.
type Source struct {
	mu      sync.RWMutex
	svid    *x509svid.SVID
	bundles *x509bundle.Set
}

// NewSource returns a source serving svid and trusting bundles.
func NewSource(svid *x509svid.SVID, bundles ...*x509bundle.Bundle) *Source {
	s := &Source{}
	s.Set(svid, bundles...)
	return s
}

// Set replaces the SVID and the whole bundle set.
func (s *Source) Set(svid *x509svid.SVID, bundles ...*x509bundle.Bundle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.svid, s.bundles = svid, x509bundle.NewSet(bundles...)
}

// GetX509SVID returns the current SVID.
func (s *Source) GetX509SVID() (*x509svid.SVID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.svid == nil {
		return nil, errors.New("spiffetest: source has no SVID")
	}
	return s.svid, nil
}

// GetX509BundleForTrustDomain returns the bundle for td.
func (s *Source) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.bundles.GetX509BundleForTrustDomain(td)
}
