package mtls_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/mtls"
	"github.com/kvgate/kvgate/mtls/spiffetest"
)

func openSVIDFiles(t *testing.T, dir string) *mtls.SVIDFiles {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := mtls.NewSVIDFiles(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSVIDFilesLayoutAndFederation(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	partner := spiffetest.NewCA("partner.org")
	dir := t.TempDir()
	if err := spiffetest.WriteSVIDDir(dir, ca.SVID(serverID), ca.Bundle(), partner.Bundle()); err != nil {
		t.Fatal(err)
	}
	s := openSVIDFiles(t, dir)
	if got := svidID(t, s); got != serverID {
		t.Fatalf("SVID %s", got)
	}
	for _, td := range []*spiffetest.CA{ca, partner} {
		b, err := s.GetX509BundleForTrustDomain(td.TD)
		if err != nil || !b.HasX509Authority(td.Cert) {
			t.Errorf("bundle for %s: %v", td.TD, err)
		}
	}
	// End to end: a partner.org client is verified by a server serving these files.
	srv := spiffeServer(t, "require", s)
	cli := spiffeClient(t, serverID, spiffetest.NewSource(partner.SVID("spiffe://partner.org/c"), ca.Bundle()))
	if srv, c := handshake(t, srv, cli); srv.err != nil || c.err != nil {
		t.Fatalf("handshake: %v / %v", srv.err, c.err)
	}
}

func TestSVIDFilesRotationAndBadUpdate(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	dir := t.TempDir()
	if err := spiffetest.WriteSVIDDir(dir, ca.SVID(serverID), ca.Bundle()); err != nil {
		t.Fatal(err)
	}
	s := openSVIDFiles(t, dir)
	rotated := serverID + "-2"
	if err := spiffetest.WriteSVIDDir(dir, ca.SVID(rotated), ca.Bundle()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rotation", func() bool { return svidID(t, s) == rotated })
	// A key that does not match the certificate: the last good SVID stays.
	other := ca.SVID(serverID + "-3")
	if err := spiffetest.WriteAtomic(filepath.Join(dir, "svid.0.key"), spiffetest.KeyPEM(other.PrivateKey)); err != nil {
		t.Fatal(err)
	}
	// Then a new good set; only it may replace the rotated one.
	final := serverID + "-4"
	if err := spiffetest.WriteSVIDDir(dir, ca.SVID(final), ca.Bundle()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "final rotation", func() bool {
		id := svidID(t, s)
		if id != rotated && id != final {
			t.Fatalf("served %s", id)
		}
		return id == final
	})
}

func TestSVIDFilesWaitsForFilesToAppear(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	dir := t.TempDir()
	done := make(chan error, 1)
	var s *mtls.SVIDFiles
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		s, err = mtls.NewSVIDFiles(ctx, dir, nil)
		done <- err
	}()
	if err := spiffetest.WriteSVIDDir(dir, ca.SVID(serverID), ca.Bundle()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := svidID(t, s); got != serverID {
		t.Fatal(got)
	}
}

func TestSVIDFilesSpiffeHelperNames(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	dir := t.TempDir()
	svid := ca.SVID(serverID)
	files := map[string][]byte{
		"svid.pem":        spiffetest.CertsPEM(svid.Certificates...),
		"svid_key.pem":    spiffetest.KeyPEM(svid.PrivateKey),
		"svid_bundle.pem": ca.CertPEM(),
	}
	for n, d := range files {
		if err := os.WriteFile(filepath.Join(dir, n), d, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := svidID(t, openSVIDFiles(t, dir)); got != serverID {
		t.Fatal(got)
	}
}

func TestSVIDFilesStartupTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	dir := t.TempDir()
	_, err := mtls.OpenIdentity(ctx, &config.Identity{Files: &config.IdentityFiles{Dir: dir}}, nil)
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "spiffe-helper") {
		t.Fatalf("err = %v", err)
	}
	if _, err := mtls.OpenIdentity(ctx, &config.Identity{Files: &config.IdentityFiles{}}, nil); err == nil {
		t.Fatal("empty dir accepted")
	}
	if id, err := mtls.OpenIdentity(ctx, nil, nil); id != nil || err != nil {
		t.Fatalf("nil identity: %v %v", id, err)
	}
}
