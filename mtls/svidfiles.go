package mtls

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// SVIDFiles is the identity read from a directory in the layout of
// `spire-agent api fetch x509 -write DIR`: svid.0.pem (leaf first, then intermediates),
// svid.0.key, bundle.0.pem and federated_bundle.0.N.pem; spiffe-helper's default names
// svid.pem, svid_key.pem and svid_bundle.pem are read when svid.0.pem is absent. The directory
// is re-read when it changes; a set that fails to load is logged and the last good one kept.
//
// A bundle certificate belongs to the trust domain named by its URI SAN (SPIRE CA
// certificates carry spiffe://TRUST-DOMAIN); one without such a SAN belongs to the SVID's
// own trust domain, except in a federated file, where it is skipped with a warning.
type SVIDFiles struct {
	dir     string
	log     *slog.Logger
	cur     atomic.Pointer[svidState]
	watch   *dirWatcher
	updated chan struct{}
}

type svidState struct {
	svid    *x509svid.SVID
	bundles *x509bundle.Set
}

// NewSVIDFiles reads dir and watches it. When the files are not there yet (a sidecar still
// fetching), it waits for them until ctx ends. log nil means slog.Default().
func NewSVIDFiles(ctx context.Context, dir string, log *slog.Logger) (*SVIDFiles, error) {
	if dir == "" {
		return nil, errors.New("mtls: identity.files.dir is empty; name the directory spire-agent or spiffe-helper writes to")
	}
	if log == nil {
		log = slog.Default()
	}
	s := &SVIDFiles{dir: dir, log: log, updated: make(chan struct{}, 1)}
	w, err := watchDirs([]string{filepath.Join(dir, "svid.0.pem")}, s.reload, log)
	if err != nil {
		return nil, err
	}
	s.watch = w
	err = s.load()
	for err != nil {
		select {
		case <-ctx.Done():
			w.Close()
			return nil, fmt.Errorf("mtls: no usable SVID in %s before the start-up timeout: %w "+
				"(is spire-agent or spiffe-helper writing there, and is the volume mounted?)", dir, err)
		case <-s.updated:
			err = s.load()
		}
	}
	return s, nil
}

func (s *SVIDFiles) reload() {
	if err := s.load(); err != nil {
		if s.cur.Load() != nil {
			s.log.Error("mtls: keeping the previous SVID", "dir", s.dir, "err", err)
		}
	} else {
		s.log.Info("mtls: SVID files reloaded", "dir", s.dir)
	}
	select {
	case s.updated <- struct{}{}:
	default:
	}
}

func (s *SVIDFiles) load() error {
	svidFile, keyFile, bundleFile := s.names()
	svid, err := x509svid.Load(svidFile, keyFile)
	if err != nil {
		return fmt.Errorf("mtls: load SVID: %w", err)
	}
	own := svid.ID.TrustDomain()
	set := x509bundle.NewSet()
	if err := s.addBundleFile(set, bundleFile, own, true); err != nil {
		return err
	}
	fed, _ := filepath.Glob(filepath.Join(s.dir, "federated_bundle.0.*.pem"))
	sort.Strings(fed)
	for _, f := range fed {
		if err := s.addBundleFile(set, f, own, false); err != nil {
			return err
		}
	}
	if !set.Has(own) {
		return fmt.Errorf("mtls: %s holds no certificate for the SVID's trust domain %s", bundleFile, own)
	}
	s.cur.Store(&svidState{svid: svid, bundles: set})
	return nil
}

func (s *SVIDFiles) names() (svid, key, bundle string) {
	j := func(n string) string { return filepath.Join(s.dir, n) }
	if _, err := os.Stat(j("svid.0.pem")); err != nil {
		if _, err2 := os.Stat(j("svid.pem")); err2 == nil {
			return j("svid.pem"), j("svid_key.pem"), j("svid_bundle.pem")
		}
	}
	return j("svid.0.pem"), j("svid.0.key"), j("bundle.0.pem")
}

func (s *SVIDFiles) addBundleFile(set *x509bundle.Set, file string, own spiffeid.TrustDomain, isOwn bool) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("mtls: read bundle: %w", err)
	}
	certs, err := parsePEMCerts(data)
	if err != nil {
		return fmt.Errorf("mtls: bundle %s: %w", file, err)
	}
	for _, c := range certs {
		td, ok := certTrustDomain(c)
		if !ok {
			if !isOwn {
				s.log.Warn("mtls: federated bundle certificate has no spiffe:// URI SAN naming its trust domain; skipped", "file", file, "subject", c.Subject.String())
				continue
			}
			td = own
		}
		b, ok := set.Get(td)
		if !ok {
			b = x509bundle.New(td)
			set.Add(b)
		}
		b.AddX509Authority(c)
	}
	return nil
}

func certTrustDomain(c *x509.Certificate) (spiffeid.TrustDomain, bool) {
	for _, u := range c.URIs {
		if td, err := spiffeid.TrustDomainFromURI(u); err == nil && u.Scheme == "spiffe" {
			return td, true
		}
	}
	return spiffeid.TrustDomain{}, false
}

func parsePEMCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return out, nil
}

// GetX509SVID returns the current SVID.
func (s *SVIDFiles) GetX509SVID() (*x509svid.SVID, error) {
	st := s.cur.Load()
	if st == nil {
		return nil, errNoSVID
	}
	return st.svid, nil
}

// GetX509BundleForTrustDomain returns the current bundle of td.
func (s *SVIDFiles) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	st := s.cur.Load()
	if st == nil {
		return nil, errNoSVID
	}
	return st.bundles.GetX509BundleForTrustDomain(td)
}

// Close stops watching the directory.
func (s *SVIDFiles) Close() error { return s.watch.Close() }
