package spiffetest

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// WorkloadAPI is a fake SPIFFE Workload API (a stand-in for a SPIRE agent) serving gRPC on a
// unix socket. It streams X.509 SVID updates like the agent does: one response at once, another
// after each change. It refuses calls without the `workload.spiffe.io: true` metadata
// (InvalidArgument), and answers PermissionDenied while Deny(true) is in force, as an agent
// does for an unregistered workload. Safe for concurrent use; stopped by t.Cleanup.
type WorkloadAPI struct {
	workload.UnimplementedSpiffeWorkloadAPIServer

	path string

	mu        sync.Mutex
	svid      *x509svid.SVID
	bundle    *x509bundle.Bundle
	federated []*x509bundle.Bundle
	deny      bool
	changed   chan struct{} // closed and replaced on every change
	server    *grpc.Server
	calls     int
}

// StartWorkloadAPI serves svid with its trust bundle on a new socket; svid may be nil when the
// test starts with Deny(true). Stopped by t.Cleanup.
func StartWorkloadAPI(t testing.TB, svid *x509svid.SVID, bundle *x509bundle.Bundle) *WorkloadAPI {
	t.Helper()
	dir := t.TempDir()
	if len(dir) > 90 { // unix socket paths are limited to about 104 bytes
		var err error
		if dir, err = os.MkdirTemp("", "wl"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	w := &WorkloadAPI{path: filepath.Join(dir, "agent.sock"), svid: svid, bundle: bundle, changed: make(chan struct{})}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}

// Addr is the socket address for go-spiffe or kvgate's identity.workloadAPI: unix:///PATH.
func (w *WorkloadAPI) Addr() string { return "unix://" + w.path }

// Start listens again after Stop (an agent restart). It is an error to Start twice.
func (w *WorkloadAPI) Start() error {
	os.Remove(w.path) // a stale socket file from the previous run
	ln, err := net.Listen("unix", w.path)
	if err != nil {
		return fmt.Errorf("spiffetest: listen %s: %w", w.path, err)
	}
	srv := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(srv, w)
	w.mu.Lock()
	if w.server != nil {
		w.mu.Unlock()
		ln.Close()
		return fmt.Errorf("spiffetest: workload API already running")
	}
	w.server = srv
	w.mu.Unlock()
	go srv.Serve(ln)
	return nil
}

// Stop closes the socket and every open stream, as a dying agent does. Safe to call twice.
func (w *WorkloadAPI) Stop() {
	w.mu.Lock()
	srv := w.server
	w.server = nil
	w.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// SetSVID rotates the SVID served.
func (w *WorkloadAPI) SetSVID(svid *x509svid.SVID) {
	w.update(func() { w.svid = svid })
}

// SetBundles replaces the own trust domain's bundle and the federated bundles.
func (w *WorkloadAPI) SetBundles(own *x509bundle.Bundle, federated ...*x509bundle.Bundle) {
	w.update(func() { w.bundle, w.federated = own, federated })
}

// Deny makes every call (and every open stream, at once) answer PermissionDenied while on.
func (w *WorkloadAPI) Deny(on bool) {
	w.update(func() { w.deny = on })
}

// Calls is how many FetchX509SVID calls arrived, refused ones included.
func (w *WorkloadAPI) Calls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls
}

func (w *WorkloadAPI) update(f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f()
	close(w.changed)
	w.changed = make(chan struct{})
}

// snapshot returns the response to send now (nil when denied) and the channel closed by the
// next change.
func (w *WorkloadAPI) snapshot() (*workload.X509SVIDResponse, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.deny || w.svid == nil {
		return nil, w.changed
	}
	key, err := x509.MarshalPKCS8PrivateKey(w.svid.PrivateKey)
	if err != nil {
		panic(fmt.Sprintf("spiffetest: marshal key: %v", err))
	}
	resp := &workload.X509SVIDResponse{
		Svids: []*workload.X509SVID{{
			SpiffeId:    w.svid.ID.String(),
			X509Svid:    concatDER(w.svid.Certificates),
			X509SvidKey: key,
			Bundle:      concatDER(w.bundle.X509Authorities()),
		}},
		FederatedBundles: map[string][]byte{},
	}
	for _, b := range w.federated {
		resp.FederatedBundles[b.TrustDomain().IDString()] = concatDER(b.X509Authorities())
	}
	return resp, w.changed
}

// FetchX509SVID implements the Workload API stream.
func (w *WorkloadAPI) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	w.mu.Lock()
	w.calls++
	w.mu.Unlock()
	md, _ := metadata.FromIncomingContext(stream.Context())
	if v := md.Get("workload.spiffe.io"); len(v) != 1 || v[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	for {
		resp, changed := w.snapshot()
		if resp == nil {
			return status.Error(codes.PermissionDenied, "no identity issued")
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
}

func concatDER(certs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, c.Raw...)
	}
	return out
}
