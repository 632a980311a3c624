package mtls_test

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/mtls"
	"github.com/kvgate/kvgate/mtls/spiffetest"
)

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sameLeaf(a *tls.Certificate, b tls.Certificate) bool {
	return bytes.Equal(a.Certificate[0], b.Certificate[0])
}

func TestCertFilesReloadsOnAtomicRename(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first, second := ca.Leaf("a.test"), ca.Leaf("a.test")
	if err := spiffetest.WriteKeyPair(crt, key, first); err != nil {
		t.Fatal(err)
	}
	cf, err := mtls.NewCertFiles(crt, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	if !sameLeaf(cf.Certificate(), first) {
		t.Fatal("initial certificate not served")
	}
	if err := spiffetest.WriteKeyPair(crt, key, second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reload", func() bool { return sameLeaf(cf.Certificate(), second) })
}

// TestCertFilesKubernetesSymlinkSwap mimics a mounted Secret: tls.crt -> ..data/tls.crt and
// ..data -> ..2024_x, updated by creating a new timestamped directory and renaming a new
// ..data symlink over the old one.
func TestCertFilesKubernetesSymlinkSwap(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	dir := t.TempDir()
	writeVersion := func(name string, c tls.Certificate) {
		vdir := filepath.Join(dir, name)
		if err := os.Mkdir(vdir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := spiffetest.WriteKeyPair(filepath.Join(vdir, "tls.crt"), filepath.Join(vdir, "tls.key"), c); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	first, second := ca.Leaf("a.test"), ca.Leaf("a.test")
	writeVersion("..v1", first)
	for _, f := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := mtls.NewCertFiles(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	writeVersion("..v2", second)
	if err := os.RemoveAll(filepath.Join(dir, "..v1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reload after ..data swap", func() bool { return sameLeaf(cf.Certificate(), second) })
}

func TestCertFilesKeepsLastGoodPair(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	good, next := ca.Leaf("a.test"), ca.Leaf("a.test")
	if err := spiffetest.WriteKeyPair(crt, key, good); err != nil {
		t.Fatal(err)
	}
	cf, err := mtls.NewCertFiles(crt, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	// A certificate whose key does not match, then garbage: both must be ignored.
	if err := spiffetest.WriteAtomic(crt, spiffetest.CertsPEM(next.Leaf)); err != nil {
		t.Fatal(err)
	}
	if err := spiffetest.WriteAtomic(key, []byte("not a key")); err != nil {
		t.Fatal(err)
	}
	// Then a good pair again; once it is served, the bad states in between were skipped
	// without ever replacing the good certificate.
	seenOther := false
	if err := spiffetest.WriteKeyPair(crt, key, next); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reload", func() bool {
		c := cf.Certificate()
		if !sameLeaf(c, good) && !sameLeaf(c, next) {
			seenOther = true
		}
		return sameLeaf(c, next)
	})
	if seenOther {
		t.Fatal("served a certificate that was neither the good one nor the next good one")
	}
}

func TestCertFilesBadPairStaysOld(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	good := ca.Leaf("a.test")
	if err := spiffetest.WriteKeyPair(crt, key, good); err != nil {
		t.Fatal(err)
	}
	cf, err := mtls.NewCertFiles(crt, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	if err := spiffetest.WriteAtomic(key, []byte("not a key")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a reload attempt", func() bool { return mtls.ReloadAttempts(cf) > 0 })
	if !sameLeaf(cf.Certificate(), good) {
		t.Fatal("a broken key replaced the last good pair")
	}
}

func TestNewCertFilesErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := mtls.NewCertFiles("", "", nil); err == nil {
		t.Fatal("empty names accepted")
	}
	if _, err := mtls.NewCertFiles(filepath.Join(dir, "no.crt"), filepath.Join(dir, "no.key"), nil); err == nil {
		t.Fatal("missing files accepted")
	}
}

func TestServerTLSFilesRotationAppliesToNewHandshakes(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first, second := ca.Leaf("a.test"), ca.Leaf("a.test")
	if err := spiffetest.WriteKeyPair(crt, key, first); err != nil {
		t.Fatal(err)
	}
	cf, err := mtls.NewCertFiles(crt, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	srv, err := mtls.ServerTLS(&config.ListenerTLS{CertFile: crt, KeyFile: key}, nil, cf)
	if err != nil {
		t.Fatal(err)
	}
	cli := &tls.Config{RootCAs: ca.Pool(), ServerName: "a.test"}
	_, c := handshake(t, srv, cli)
	if c.err != nil || !bytes.Equal(c.state.PeerCertificates[0].Raw, first.Leaf.Raw) {
		t.Fatalf("first handshake: %v", c.err)
	}
	if err := spiffetest.WriteKeyPair(crt, key, second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reload", func() bool { return sameLeaf(cf.Certificate(), second) })
	_, c = handshake(t, srv, cli)
	if c.err != nil || !bytes.Equal(c.state.PeerCertificates[0].Raw, second.Leaf.Raw) {
		t.Fatalf("handshake after rotation: %v", c.err)
	}
}
