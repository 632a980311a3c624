package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/kvgate/kvgate/router"
)

// Mirroring (requestMirror): a fire-and-forget copy of a request goes to
// another pool. The primary never waits for it: the request body is teed
// into a bounded buffer while it streams to the primary, and the copy is
// sent from its own goroutine only once the primary has read the whole
// body. A body larger than mirrorMaxBody is not buffered past the bound and
// that mirror is dropped. At most mirrorMaxInFlight copies run at once per
// proxy; further ones are dropped and counted.
const (
	mirrorMaxBody     = 1 << 20
	mirrorMaxInFlight = 128
	mirrorTimeout     = 10 * time.Second // until the mirror's response starts
	mirrorDrain       = 1 << 20          // response bytes read before a mirror's connection is dropped
)

// mirrorSet bounds and tracks the mirrors in flight of one Proxy. The zero
// value is ready to use.
type mirrorSet struct {
	once   sync.Once
	sem    chan struct{}
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

func (m *mirrorSet) init() {
	m.once.Do(func() {
		m.sem = make(chan struct{}, mirrorMaxInFlight)
		m.ctx, m.cancel = context.WithCancel(context.Background())
	})
}

// stop cancels the mirrors in flight and waits for them until ctx is done.
func (m *mirrorSet) stop(ctx context.Context) {
	m.init()
	m.cancel()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// mirrorJob is one copy to send: a detached Exchange (it owns copies of
// every string, since the client's Exchange is recycled) and its pool.
type mirrorJob struct {
	x    *Exchange
	pool *pool
}

// startMirrors decides which mirrors fire for this request and arranges for
// them to be sent once the body has been read.
func (p *Proxy) startMirrors(x *Exchange, s *snapshot, lists ...[]router.Mirror) {
	var jobs []mirrorJob
	for _, l := range lists {
		for i := range l {
			m := &l[i]
			pl := s.pools[m.Pool]
			if pl == nil || !m.ShouldMirror(rnd()) {
				continue
			}
			jobs = append(jobs, mirrorJob{x: detach(x), pool: pl})
		}
	}
	if len(jobs) == 0 {
		return
	}
	if x.body == nil {
		p.sendMirrors(jobs, nil)
		return
	}
	x.body = &mirrorTee{src: x.body, want: x.bodyLen, fire: func(body []byte) { p.sendMirrors(jobs, body) }}
}

// detach copies what a mirror needs from x.
func detach(x *Exchange) *Exchange {
	var fields []Field
	x.hdr.Each(VisitFunc(func(n, v string) { fields = append(fields, Field{strings.Clone(n), strings.Clone(v)}) }))
	return &Exchange{
		listener: x.listener, proto: x.proto, tls: x.tls, peerID: x.peerID, remote: x.remote,
		method: strings.Clone(x.method), host: strings.Clone(x.upstreamHost()),
		path: strings.Clone(x.upstreamPath()), query: strings.Clone(x.query),
		hdr: fieldHeaders(fields), requestID: strings.Clone(x.requestID), bodyLen: -1,
		rt: routeState{reqMods: x.rt.reqMods},
	}
}

func (p *Proxy) sendMirrors(jobs []mirrorJob, body []byte) {
	p.mirrors.init()
	for _, j := range jobs {
		select {
		case p.mirrors.sem <- struct{}{}:
		default:
			p.metrics.mirrors.WithLabel("dropped").Add(1)
			continue
		}
		if body != nil {
			j.x.body, j.x.bodyLen = bytes.NewReader(body), int64(len(body))
		} else {
			j.x.bodyLen = 0
		}
		p.mirrors.wg.Add(1)
		go p.sendMirror(j)
	}
}

func (p *Proxy) sendMirror(j mirrorJob) {
	defer func() { <-p.mirrors.sem; p.mirrors.wg.Done() }()
	ep := j.pool.pick(nil, 0)
	if ep == nil {
		p.metrics.mirrors.WithLabel("error").Add(1)
		return
	}
	defer ep.state.End(0)
	x := j.x
	x.ctx = p.mirrors.ctx
	x.start = time.Now()
	x.rt.tryDeadline = x.start.Add(mirrorTimeout)
	up, err := ep.rt.roundTrip(x)
	if err != nil {
		p.metrics.mirrors.WithLabel("error").Add(1)
		return
	}
	var rerr error
	if up.body != nil {
		n, err := io.Copy(io.Discard, io.LimitReader(up.body, mirrorDrain))
		if err != nil || n == mirrorDrain {
			rerr = errMirrorAbandoned
		}
	}
	up.done(rerr)
	p.metrics.mirrors.WithLabel("sent").Add(1)
}

var errMirrorAbandoned = errors.New("proxy: mirror response abandoned")

// mirrorTee copies the body into a bounded buffer as the primary reads it
// and fires the mirrors at EOF, unless the body outgrew mirrorMaxBody.
type mirrorTee struct {
	src   io.Reader
	want  int64 // body length, -1 when unknown: then EOF ends it
	n     int64
	buf   []byte
	over  bool
	fired bool
	fire  func(body []byte)
}

func (t *mirrorTee) Read(p []byte) (int, error) {
	n, err := t.src.Read(p)
	t.n += int64(n)
	if n > 0 && !t.over {
		if len(t.buf)+n > mirrorMaxBody {
			t.over, t.buf = true, nil
		} else {
			t.buf = append(t.buf, p[:n]...)
		}
	}
	// Transports stop reading at a known length without waiting for EOF.
	if (err == io.EOF || t.want >= 0 && t.n >= t.want) && !t.fired {
		t.fired = true
		if !t.over {
			t.fire(t.buf)
		}
	}
	return n, err
}

// fieldHeaders is a HeaderReader over copied fields.
type fieldHeaders []Field

func (h fieldHeaders) Get(name string) string {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

func (h fieldHeaders) Len() int { return len(h) }

func (h fieldHeaders) Each(v FieldVisitor) {
	for _, f := range h {
		v.Field(f.Name, f.Value)
	}
}
