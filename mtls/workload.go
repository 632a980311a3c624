package mtls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/kvgate/kvgate/config"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// Identity is an IdentitySource that holds background resources and must be closed.
type Identity interface {
	IdentitySource
	// Close stops watching. Later calls to the source's methods may fail.
	Close() error
}

var (
	_ Identity = (*WorkloadSource)(nil)
	_ Identity = (*SVIDFiles)(nil)
)

// OpenIdentity starts the identity source the configuration names and waits for the first
// SVID: the SVID files in id.Files.Dir when set, else the Workload API (id.WorkloadAPI, default
// $SPIFFE_ENDPOINT_SOCKET). id nil means no identity and returns (nil, nil). log nil means
// slog.Default(). ctx bounds the start-up wait together with id.StartupTimeout, which
// config.Default sets; a StartupTimeout of 0 or less leaves the bound to ctx alone.
func OpenIdentity(ctx context.Context, id *config.Identity, log *slog.Logger) (Identity, error) {
	if id == nil {
		return nil, nil
	}
	if timeout := id.StartupTimeout.D(); timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if id.Files != nil {
		return NewSVIDFiles(ctx, id.Files.Dir, log)
	}
	return NewWorkloadSource(ctx, id.WorkloadAPI, log)
}

// WorkloadSource is the identity served by a SPIFFE Workload API (a SPIRE agent). SVID
// rotation and bundle changes, federated ones included, stream in and apply to the next
// handshake. If the agent goes away the last SVID keeps serving while the source reconnects.
type WorkloadSource struct {
	src *workloadapi.X509Source
}

// NewWorkloadSource connects to the Workload API at addr (unix:///path, a bare /path, or
// tcp://IP:PORT; "" means $SPIFFE_ENDPOINT_SOCKET) and waits until the first SVID arrives or
// ctx ends. While waiting it retries every error, PermissionDenied (workload not registered
// yet) and Unavailable (agent not up yet) included. log nil means slog.Default().
func NewWorkloadSource(ctx context.Context, addr string, log *slog.Logger) (*WorkloadSource, error) {
	if log == nil {
		log = slog.Default()
	}
	addr, err := workloadAddr(addr)
	if err != nil {
		return nil, err
	}
	sl := &spiffeLog{log: log}
	src, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(
		workloadapi.WithAddr(addr),
		workloadapi.WithLogger(sl),
		workloadapi.WithBackoffStrategy(backoffStrategy{}),
	))
	if err != nil {
		return nil, startupError(ctx, addr, err, sl.last())
	}
	return &WorkloadSource{src: src}, nil
}

func workloadAddr(addr string) (string, error) {
	if addr == "" {
		addr = os.Getenv(workloadapi.SocketEnv)
	}
	if addr == "" {
		return "", fmt.Errorf("mtls: no Workload API address: set identity.workloadAPI (like unix:///run/spire/sockets/agent.sock) or %s", workloadapi.SocketEnv)
	}
	if strings.HasPrefix(addr, "/") {
		addr = "unix://" + addr
	}
	if err := workloadapi.ValidateAddress(addr); err != nil {
		return "", fmt.Errorf("mtls: identity.workloadAPI %q: %w (write it like unix:///run/spire/sockets/agent.sock)", addr, err)
	}
	return addr, nil
}

func startupError(ctx context.Context, addr string, err error, last string) error {
	if ctx.Err() == nil {
		return fmt.Errorf("mtls: workload API %s: %w", addr, err)
	}
	if last == "" {
		last = err.Error()
	}
	return fmt.Errorf("mtls: no X.509 SVID from the Workload API at %s before the start-up timeout (last error: %s); "+
		"check that the SPIRE agent is running, that its socket is mounted at that path, and that this workload is "+
		"registered (PermissionDenied means the agent answered but has no registration entry matching this process): %w",
		addr, last, err)
}

// GetX509SVID returns the current SVID.
func (w *WorkloadSource) GetX509SVID() (*x509svid.SVID, error) { return w.src.GetX509SVID() }

// GetX509BundleForTrustDomain returns the current bundle of td (own or federated).
func (w *WorkloadSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return w.src.GetX509BundleForTrustDomain(td)
}

// Updated receives a value after each update from the agent (for tests and metrics; it holds
// at most one pending value).
func (w *WorkloadSource) Updated() <-chan struct{} { return w.src.Updated() }

// Close drops the connection to the agent.
func (w *WorkloadSource) Close() error { return w.src.Close() }

// backoffStrategy retries the Workload API after 250ms, doubling to at most 5s: an agent
// restart is noticed within seconds, and a missing agent costs little.
type backoffStrategy struct{}

func (backoffStrategy) NewBackoff() workloadapi.Backoff { return &backoff{} }

type backoff struct{ next time.Duration }

func (b *backoff) Next() time.Duration {
	if b.next == 0 {
		b.next = 250 * time.Millisecond
	}
	d := b.next
	b.next = min(2*b.next, 5*time.Second)
	return d
}

func (b *backoff) Reset() { b.next = 0 }

// spiffeLog adapts slog to go-spiffe's logger and remembers the last error for start-up
// diagnostics.
type spiffeLog struct {
	log     *slog.Logger
	mu      sync.Mutex
	lastErr string
}

func (l *spiffeLog) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastErr
}

func (l *spiffeLog) Debugf(format string, args ...any) {
	l.log.Debug("mtls: workload API: " + fmt.Sprintf(format, args...))
}
func (l *spiffeLog) Infof(format string, args ...any) {
	l.log.Info("mtls: workload API: " + fmt.Sprintf(format, args...))
}
func (l *spiffeLog) Warnf(format string, args ...any) {
	l.log.Warn("mtls: workload API: " + fmt.Sprintf(format, args...))
}
func (l *spiffeLog) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.lastErr = msg
	l.mu.Unlock()
	l.log.Warn("mtls: workload API: " + msg)
}

var errNoSVID = errors.New("mtls: no SVID loaded")
