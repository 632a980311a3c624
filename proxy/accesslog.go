package proxy

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/kvgate/kvgate/internal/jsonstr"
)

// accessLog writes one JSON line per finished request. Lines are built in a
// pooled buffer and written through a buffered writer that is flushed every
// 100ms, so logging costs no syscall and no allocation per request. Every
// string goes through jsonstr, so a line is JSON whatever bytes the request
// carried (a path byte that is not UTF-8 is logged as U+FFFD).
type accessLog struct {
	mu   sync.Mutex
	w    *bufio.Writer
	f    io.Closer
	stop chan struct{}
	wg   sync.WaitGroup
}

func openAccessLog(path string) (*accessLog, error) {
	var out io.Writer
	var closer io.Closer
	switch path {
	case "off", "":
		return nil, nil
	case "stdout":
		out = os.Stdout
	case "stderr":
		out = os.Stderr
	default:
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, fmt.Errorf("proxy: open accessLog.path: %w (use stdout, stderr, off or a writable file)", err)
		}
		out, closer = f, f
	}
	a := &accessLog{w: bufio.NewWriterSize(out, 64<<10), f: closer, stop: make(chan struct{})}
	a.wg.Add(1)
	go a.flushLoop()
	return a, nil
}

func (a *accessLog) flushLoop() {
	defer a.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			a.mu.Lock()
			_ = a.w.Flush()
			a.mu.Unlock()
		}
	}
}

func (a *accessLog) close() {
	if a == nil {
		return
	}
	close(a.stop)
	a.wg.Wait()
	a.mu.Lock()
	_ = a.w.Flush()
	a.mu.Unlock()
	if a.f != nil {
		_ = a.f.Close()
	}
}

var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (a *accessLog) log(x *Exchange, status int, n int64, d time.Duration, err error) {
	if a == nil {
		return
	}
	bp := lineBufs.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"time":"`...)
	b = x.start.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","request_id":`...)
	b = jsonstr.Append(b, x.requestID)
	b = appendField(b, "listener", x.listener.name)
	var ip [64]byte // an IPv6 address with a zone fits; AppendTo grows it otherwise
	b = appendField(b, "remote", b2s(x.remote.Addr().AppendTo(ip[:0])))
	b = appendField(b, "proto", x.proto)
	b = appendField(b, "method", x.method)
	b = appendField(b, "host", x.host)
	b = appendField(b, "path", x.path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = appendField(b, "route", x.route)
	b = appendField(b, "pool", x.pool)
	if x.ep != nil {
		b = appendField(b, "endpoint", x.ep.addr)
	}
	if x.peerID != "" {
		b = appendField(b, "peer", x.peerID)
	}
	if x.hasTokens {
		b = appendTokens(b, x) // usage.go
	}
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(d.Microseconds())/1000, 'f', 3, 64)
	if x.errKind != "" {
		b = appendField(b, "error", string(x.errKind))
	}
	if err != nil {
		b = appendField(b, "detail", err.Error())
	}
	b = append(b, "}\n"...)
	a.mu.Lock()
	_, _ = a.w.Write(b)
	a.mu.Unlock()
	*bp = b
	lineBufs.Put(bp)
}

// appendField appends ,"k":"v"; k is a constant key that needs no escaping.
func appendField(b []byte, k, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, k...)
	b = append(b, '"', ':')
	return jsonstr.Append(b, v)
}
