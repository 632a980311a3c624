package kube

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/kvgate/kvgate/config/adapt"
)

var secretsGVR = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

// secretFiles keeps the TLS Secrets that served Gateway listeners name as
// PEM files in a private directory, where the proxy's listeners read (and
// re-read, on change) their certificates. Secrets are read with get by
// name, never listed: kvgate needs no right to read other Secrets.
type secretFiles struct {
	dir string
	dyn dynamic.Interface
	c   *Controller // for logging once

	mu     sync.Mutex
	wanted []string                   // namespace/name, sorted
	files  map[string]adapt.CertFiles // the wanted Secrets that hold a valid pair
	sums   map[string][32]byte        // what the files hold
}

func newSecretFiles(c *Controller, dyn dynamic.Interface) (*secretFiles, error) {
	dir, err := os.MkdirTemp("", "kvgate-secrets-")
	if err != nil {
		return nil, fmt.Errorf("kube: directory for listener certificates: %w", err)
	}
	return &secretFiles{dir: dir, dyn: dyn, c: c, files: map[string]adapt.CertFiles{}, sums: map[string][32]byte{}}, nil
}

// want sets the Secrets to keep; it reports whether the set changed.
func (s *secretFiles) want(keys []string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Equal(s.wanted, keys) {
		return false
	}
	s.wanted = slices.Clone(keys)
	return true
}

// certs are the files of every wanted Secret that holds a valid pair, by
// namespace/name (adapt.Options.Certs).
func (s *secretFiles) certs() map[string]adapt.CertFiles {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]adapt.CertFiles, len(s.files))
	for k, v := range s.files {
		out[k] = v
	}
	return out
}

// refresh reads every wanted Secret and writes its files when they
// changed; Secrets no longer wanted lose theirs. It reports whether the set
// of usable Secrets changed (a translation then needs to run again).
func (s *secretFiles) refresh(ctx context.Context) bool {
	s.mu.Lock()
	wanted := slices.Clone(s.wanted)
	s.mu.Unlock()
	usable := map[string]adapt.CertFiles{}
	for _, key := range wanted {
		if ctx.Err() != nil {
			return false
		}
		if f, ok := s.read(ctx, key); ok {
			usable[key] = f
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := len(usable) != len(s.files)
	for k := range usable {
		if _, ok := s.files[k]; !ok {
			changed = true
		}
	}
	for k := range s.files {
		if _, ok := usable[k]; !ok && !slices.Contains(wanted, k) {
			_ = os.RemoveAll(filepath.Join(s.dir, filepath.FromSlash(k)))
			delete(s.sums, k)
		}
	}
	s.files = usable
	return changed
}

// read gets one Secret and brings its files up to date; false when it is
// missing, unreadable or holds no valid tls.crt and tls.key.
func (s *secretFiles) read(ctx context.Context, key string) (adapt.CertFiles, bool) {
	ns, name, _ := strings.Cut(key, "/")
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u, err := s.dyn.Resource(secretsGVR).Namespace(ns).Get(gctx, name, metav1.GetOptions{})
	if err != nil {
		why := err.Error()
		if apierrors.IsForbidden(err) {
			why = "forbidden: grant kvgate's service account get on secrets in namespace " + ns
		}
		s.c.once("secret "+key+" "+why, func() {
			s.c.log.Warn("kubernetes: cannot read a listener's TLS Secret; the listener is not served", "secret", key, "err", why)
		})
		return adapt.CertFiles{}, false
	}
	crt, key1 := secretValue(u.Object, "tls.crt"), secretValue(u.Object, "tls.key")
	if _, err := tls.X509KeyPair(crt, key1); err != nil {
		s.c.once("secret "+key+" invalid "+err.Error(), func() {
			s.c.log.Warn("kubernetes: a listener's TLS Secret holds no valid tls.crt and tls.key; the listener is not served", "secret", key, "err", err.Error())
		})
		return adapt.CertFiles{}, false
	}
	dir := filepath.Join(s.dir, ns, name)
	f := adapt.CertFiles{Cert: filepath.Join(dir, "tls.crt"), Key: filepath.Join(dir, "tls.key")}
	sum := sha256.Sum256(bytes.Join([][]byte{crt, key1}, []byte{0}))
	s.mu.Lock()
	same := s.sums[key] == sum
	s.mu.Unlock()
	if same {
		return f, true
	}
	// The key first: a listener re-reads both files on each change, and
	// the last change (the certificate) finds a matching pair.
	if err := writeAtomic(dir, "tls.key", key1); err != nil {
		s.c.log.Error("kubernetes: cannot write a listener's key", "secret", key, "err", err)
		return adapt.CertFiles{}, false
	}
	if err := writeAtomic(dir, "tls.crt", crt); err != nil {
		s.c.log.Error("kubernetes: cannot write a listener's certificate", "secret", key, "err", err)
		return adapt.CertFiles{}, false
	}
	s.mu.Lock()
	s.sums[key] = sum
	s.mu.Unlock()
	return f, true
}

// secretValue decodes data[k] of a Secret (base64 in the API's JSON).
func secretValue(o map[string]any, k string) []byte {
	v := str(o, "data", k)
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil
	}
	return b
}

// writeAtomic writes dir/name through a temporary file and a rename, so
// that a reader never sees half a file.
func writeAtomic(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+name+"-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		_ = os.Remove(f.Name())
		return cmpErr(werr, cerr)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	return nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// close removes the files.
func (s *secretFiles) close() { _ = os.RemoveAll(s.dir) }
