package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvgate/kvgate/pick"
)

// maxMetricsBytes bounds one scraped metrics page.
const maxMetricsBytes = 4 << 20

// startScraper runs the metrics scraper of ip until close: every scrape
// interval, each endpoint's inference.metricsPath is fetched (at most one
// fetch per endpoint at a time, so a hanging server does not pile them up)
// and its figures stored in the endpoint's atomics. A failed scrape marks
// the endpoint suspect; its old figures go stale on their own.
func (ip *infPool) startScraper(log *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	ip.stop, ip.done = cancel, make(chan struct{})
	go ip.scrapeLoop(ctx, log)
}

type scrapeTarget struct {
	busy atomic.Bool
	m    pick.ServerMetrics
	buf  []byte
}

func (ip *infPool) scrapeLoop(ctx context.Context, log *slog.Logger) {
	defer close(ip.done)
	defer ip.stopKV()
	client := ip.scrapeClient()
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	defer wg.Wait()
	targets := map[*pick.Endpoint]*scrapeTarget{}
	iv := ip.picks().ScrapeInterval()
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		states := ip.endpoints().states
		in := ip.cfg.Load()
		seen := make(map[*pick.Endpoint]bool, len(states))
		for _, e := range states {
			seen[e] = true
			tg := targets[e]
			if tg == nil {
				tg = &scrapeTarget{}
				targets[e] = tg
			}
			if !tg.busy.CompareAndSwap(false, true) {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer tg.busy.Store(false)
				if err := ip.scrapeOne(ctx, client, e, tg, in.MetricsPath, max(4*iv, time.Second)); err != nil && ctx.Err() == nil {
					if !e.Suspect() {
						log.Warn("inference metrics scrape failed; endpoint marked suspect", "pool", ip.name, "endpoint", e.Addr, "err", err)
					}
					e.MarkSuspect(true)
				}
				ip.q.kick()
			}()
		}
		for e := range targets {
			if !seen[e] {
				delete(targets, e)
			}
		}
		ip.syncKV(ctx, states, in, log)
		if nv := ip.picks().ScrapeInterval(); nv != iv {
			iv = nv
			t.Reset(iv)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// scrapeClient is a plain HTTP client for the pool's endpoints; TLS pools
// are scraped over TLS with the pool's CA settings.
func (ip *infPool) scrapeClient() *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	if pl := ip.pool.Load(); pl.cfg.TLS != nil {
		if c, err := upstreamTLS(pl.cfg, pl.ids); err == nil {
			tr.TLSClientConfig = c
		} else {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	return &http.Client{Transport: tr}
}

func (ip *infPool) scrapeOne(ctx context.Context, c *http.Client, e *pick.Endpoint, tg *scrapeTarget, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	scheme := "http://"
	if ip.pool.Load().cfg.TLS != nil {
		scheme = "https://"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+e.Addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("proxy: GET %s on %s answered %d; check inference.metricsPath", path, e.Addr, resp.StatusCode)
	}
	tg.buf = tg.buf[:0]
	for {
		if len(tg.buf) == cap(tg.buf) {
			tg.buf = append(tg.buf, 0)[:len(tg.buf)]
		}
		n, err := resp.Body.Read(tg.buf[len(tg.buf):cap(tg.buf)])
		tg.buf = tg.buf[:len(tg.buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if len(tg.buf) > maxMetricsBytes {
			return fmt.Errorf("proxy: metrics page of %s is over %d bytes", e.Addr, maxMetricsBytes)
		}
	}
	if err := pick.ParseMetrics(tg.buf, &tg.m); err != nil {
		return err
	}
	ip.picks().StoreScrape(e, &tg.m, time.Now().UnixNano())
	return nil
}
