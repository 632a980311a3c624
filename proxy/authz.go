package proxy

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/mtls"
)

// Authorization: config.authorization compiles into the snapshot with every
// reload (mtls.CompileAuthz); the core checks each request after the route
// and its backend pool are chosen and before anything is sent upstream.
// Denials answer 403 and are counted per policy in kvgate_authz_denied_total.

// compileAuthz compiles cfg.Authorization; nil when there is no policy, so
// the request path skips the check entirely.
func compileAuthz(cfg *config.Config) (*mtls.Authorizer, error) {
	if len(cfg.Authorization) == 0 {
		return nil, nil
	}
	a, err := mtls.CompileAuthz(cfg.Authorization)
	if err != nil {
		return nil, fmt.Errorf("proxy: authorization: %w", err)
	}
	return a, nil
}

// authorize checks x against the snapshot's policies. It returns nil when
// the request may go on, else the 403 reply naming the deciding policy.
func (p *Proxy) authorize(s *snapshot, x *Exchange) *Reply {
	if s.authz == nil {
		return nil
	}
	req := mtls.AuthzRequest{
		Principal: x.peerID,
		SourceIP:  x.remote.Addr().Unmap(),
		Host:      x.host,
		Method:    x.method,
		Path:      x.path,
		Port:      x.listener.port(),
		Header:    x.authzHeader,
	}
	d := s.authz.Check(x.route, x.pool, &req)
	if d.Allowed {
		return nil
	}
	p.metrics.authzDenied().WithLabel(d.Policy).Add(1)
	p.status.denials.add(d.Policy, x) // status.go
	who := "anonymous caller"
	if x.peerID != "" {
		who = x.peerID
	}
	msg := "request denied by authorization policy " + strconv.Quote(d.Policy) + " for " + who
	if d.Reason == mtls.NoAllowMatched {
		msg = "request denied: no ALLOW authorization policy for route " + strconv.Quote(x.route) +
			" matches " + who + "; ask for a policy that allows it"
	}
	return x.fail(403, errForbidden, codeAuthzDenied, msg)
}

// authzHeader looks a request header up for policy matching. A header sent
// with an empty value counts as present.
func (x *Exchange) authzHeader(name string) (string, bool) {
	if v := x.hdr.Get(name); v != "" {
		return v, true
	}
	found := false
	x.hdr.Each(VisitFunc(func(n, _ string) {
		if !found && strings.EqualFold(n, name) {
			found = true
		}
	}))
	return "", found
}

// port is the local TCP (or UDP) port the listener is bound to, 0 before start.
func (l *Listener) port() int {
	if l.ln == nil {
		return 0
	}
	if a, ok := l.ln.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// authzDenied is the family of denials by policy name; the label is "" when
// ALLOW policies applied but none matched.
func (m *metrics) authzDenied() *labeledCounter {
	m.authzOnce.Do(func() { m.authz = newLabeledCounter() })
	return m.authz
}
