package proxy

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/kvgate/kvgate/router"
)

// routeState is the per-request routing state: what matched, which filters
// apply, what is sent upstream instead of the client's host and path, and
// the deadlines of the exchange. It lives inside the pooled Exchange and is
// zeroed with it.
type routeState struct {
	match   router.MatchResult
	backend *router.Backend
	// reqMods and respMods are the route's then the backend's header modifiers (nil: none).
	reqMods  [2]*router.HeaderModifier
	respMods [2]*router.HeaderModifier
	upHost   string // Host / :authority sent upstream; "" keeps the client's
	upPath   string // path sent upstream; "" keeps the client's
	// deadline bounds the whole exchange (timeouts.request); tryDeadline
	// bounds one try until its response starts (timeouts.backendRequest).
	// The zero time means no bound.
	deadline    time.Time
	tryDeadline time.Time
	retries     int
}

// upstreamHost is the Host sent upstream: the urlRewrite hostname or the client's.
func (x *Exchange) upstreamHost() string {
	if x.rt.upHost != "" {
		return x.rt.upHost
	}
	return x.host
}

// upstreamPath is the path sent upstream: the urlRewrite result or the client's.
func (x *Exchange) upstreamPath() string {
	if x.rt.upPath != "" {
		return x.rt.upPath
	}
	return x.path
}

// redirect answers a route's requestRedirect filter; nil when the route has none.
func redirect(x *Exchange, m router.MatchResult) *Reply {
	rd := m.Route.Filters.Redirect
	if rd == nil {
		return nil
	}
	req := router.RedirectRequest{Scheme: "http", Host: x.Host(), Path: x.path, RawQuery: x.query}
	if x.tls {
		req.Scheme = "https"
	}
	if x.listener != nil && x.listener.ln != nil {
		if ta, ok := x.listener.Addr().(*net.TCPAddr); ok {
			req.ListenerPort = ta.Port
		}
	}
	loc, code := rd.Location(req, m)
	return &Reply{Status: code, Header: []Field{{"Location", loc}}, Length: 0}
}

// applyRoute records the matched route and chosen backend and runs their
// filters that act before the request goes upstream: header overlays, URL
// rewrite, model rewrite and mirrors. A non-nil Reply ends the request.
func (p *Proxy) applyRoute(x *Exchange, s *snapshot, m router.MatchResult, b *router.Backend) *Reply {
	rt := &x.rt
	rt.match, rt.backend = m, b
	rf, bf := &m.Route.Filters, &b.Filters
	rt.reqMods = [2]*router.HeaderModifier{rf.RequestHeaders, bf.RequestHeaders}
	rt.respMods = [2]*router.HeaderModifier{rf.ResponseHeaders, bf.ResponseHeaders}
	for _, rw := range [2]*router.URLRewrite{rf.Rewrite, bf.Rewrite} {
		if rw == nil {
			continue
		}
		if rw.Hostname != "" {
			rt.upHost = rw.Hostname
		}
		if rw.Path != nil {
			rt.upPath = rw.RewritePath(x.upstreamPath(), m)
		}
	}
	if t := m.Route.Timeouts.Request.D(); t > 0 {
		rt.deadline = x.start.Add(t)
	}
	if r := rewriteModel(x, b); r != nil {
		return r
	}
	if len(rf.Mirrors) > 0 || len(bf.Mirrors) > 0 {
		p.startMirrors(x, s, rf.Mirrors, bf.Mirrors)
	}
	return nil
}

// finishRoute runs the filters that act on an upstream response.
func finishRoute(x *Exchange, r *Reply) *Reply {
	if x.up == nil || r != &x.reply {
		return r
	}
	e := fieldEditor{&r.Header}
	for _, m := range x.rt.respMods {
		m.Apply(e)
	}
	return r
}

// reqTouched reports whether a requestHeaderModifier names this header: the
// client's values are then replaced by the overlay's result (emitReqHeaders).
func (rt *routeState) reqTouched(name string) bool {
	for _, m := range rt.reqMods {
		if m != nil && modNames(m, name) {
			return true
		}
	}
	return false
}

func modNames(m *router.HeaderModifier, name string) bool {
	for _, h := range m.Set {
		if strings.EqualFold(h.Name, name) {
			return true
		}
	}
	for _, h := range m.Add {
		if strings.EqualFold(h.Name, name) {
			return true
		}
	}
	for _, h := range m.Remove {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// emitReqHeaders writes the headers the request modifiers touch: the
// client's values of those names, edited by each modifier in order.
func emitReqHeaders(x *Exchange, dst headerSink) {
	rt := &x.rt
	if rt.reqMods[0] == nil && rt.reqMods[1] == nil {
		return
	}
	var fields []Field
	x.hdr.Each(VisitFunc(func(name, value string) {
		if rt.reqTouched(name) {
			fields = append(fields, Field{name, value})
		}
	}))
	e := fieldEditor{&fields}
	for _, m := range rt.reqMods {
		m.Apply(e)
	}
	for _, f := range fields {
		if strings.EqualFold(f.Name, "host") || strings.EqualFold(f.Name, "content-length") {
			continue // framing and authority belong to the transport
		}
		dst.Add(f.Name, f.Value)
	}
}

// fieldEditor edits a field list for router.HeaderModifier.
type fieldEditor struct{ f *[]Field }

var _ router.HeaderEditor = fieldEditor{}

func (e fieldEditor) Set(name, value string) {
	e.Del(name)
	*e.f = append(*e.f, Field{name, value})
}

func (e fieldEditor) Add(name, value string) { *e.f = append(*e.f, Field{name, value}) }

func (e fieldEditor) Del(name string) {
	out := (*e.f)[:0]
	for _, f := range *e.f {
		if !strings.EqualFold(f.Name, name) {
			out = append(out, f)
		}
	}
	*e.f = out
}

// rnd is the random source handed to the router's weighted choices.
func rnd() uint64 { return rand.Uint64() }

// deadlineBody ends a response body that runs past timeouts.request: the
// stream is cut at its next read after the deadline (an upstream that sends
// nothing at all is bounded by the idle timeout instead).
type deadlineBody struct {
	r io.Reader
	x *Exchange
}

var errRequestTimeout = errors.New("proxy: timeouts.request passed while the response was streaming; raise it or set it to 0 for long streams")

func (d *deadlineBody) Read(p []byte) (int, error) {
	if !time.Now().Before(d.x.rt.deadline) {
		d.x.errKind = codeRequestTimeout
		return 0, errRequestTimeout
	}
	return d.r.Read(p)
}
