package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/kvgate/kvgate/cache"
	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/kvevents"
	"github.com/kvgate/kvgate/pick"
)

// This file wires precise mode (inference.kvEvents) into an inference pool:
// one kvevents.Subscriber per endpoint, started and stopped by the scrape
// loop as endpoints come and go, filling the pool's cache.TokenIndex; and
// the tokenize call on the request path, whose token blocks the pick
// matches against it (pick/precise.go). Any failure (tokenizer slow or
// down, events stale, an endpoint that does not publish) leaves the pick
// on the approximate index.

// kvState is one configuration of a pool's precise mode.
type kvState struct {
	cfg    config.KVEvents
	tok    *kvevents.Tokenizer
	client *http.Client
	subs   map[*pick.Endpoint]context.CancelFunc // owned by the scrape loop
	wg     sync.WaitGroup
	rr     atomic.Uint64
}

// syncKV makes the precise mode of ip match in and the endpoints in states.
// Only the scrape loop calls it.
func (ip *infPool) syncKV(ctx context.Context, states []*pick.Endpoint, in *config.Inference, log *slog.Logger) {
	kv := ip.kv.Load()
	if kv != nil && (in.KVEvents == nil || kv.cfg != *in.KVEvents) {
		ip.stopKV()
		kv = nil
	}
	if in.KVEvents == nil {
		return
	}
	if kv == nil {
		c := ip.scrapeClient()
		kv = &kvState{cfg: *in.KVEvents, client: c, subs: map[*pick.Endpoint]context.CancelFunc{},
			tok: kvevents.NewTokenizer(c, in.KVEvents.TokenizePath, in.KVEvents.TokenizeTimeout.D(), in.KVEvents.TokenizeCache)}
		ip.picks().ConfigurePrecise(kv.cfg.MaxBlocks, int64(kv.cfg.StaleAfter.D()))
		ip.kv.Store(kv)
	}
	seen := make(map[*pick.Endpoint]bool, len(states))
	for _, e := range states {
		seen[e] = true
		if kv.subs[e] != nil {
			continue
		}
		sctx, cancel := context.WithCancel(ctx)
		kv.subs[e] = cancel
		s := kvevents.NewSubscriber(kvevents.Options{
			Endpoint: config.KVEventsAddress(kv.cfg.Endpoint, e.Addr), Replay: config.KVEventsAddress(kv.cfg.ReplayEndpoint, e.Addr),
			Topic: kv.cfg.Topic, Name: e.Addr, Index: ip.picks().Tokens(),
			MinBackoff: config.DefaultKVMinBackoff, MaxBackoff: config.DefaultKVMaxBackoff,
			ReplayTimeout: kv.cfg.ReplayTimeout.D(), ProbeAfter: config.DefaultKVProbeAfter,
			Log: log.With("pool", ip.name),
		})
		kv.wg.Add(1)
		go func() { defer kv.wg.Done(); s.Run(sctx) }()
	}
	for e, cancel := range kv.subs {
		if !seen[e] {
			cancel()
			delete(kv.subs, e)
		}
	}
}

// stopKV stops every subscriber of ip's precise mode and turns it off.
func (ip *infPool) stopKV() {
	kv := ip.kv.Swap(nil)
	if kv == nil {
		return
	}
	for _, cancel := range kv.subs {
		cancel()
	}
	kv.wg.Wait()
	kv.client.CloseIdleConnections()
}

// tokenize fills req.TokenBlocks from the model server's tokenizer when
// precise mode is on and the request qualifies: the whole body was read,
// and it carries no cache_salt (the events do not say which salt a block
// was computed with, so a salted prompt is matched approximately).
func (kv *kvState) tokenize(x *Exchange, ip *infPool, sc *inferScratch, req *pick.PickRequest) {
	bs := ip.picks().Tokens().BlockSize()
	if bs <= 0 || !req.HasPrompt || sc.prompt.CacheSalt != "" || sc.prompt.Truncated || x.bodyLen < 0 || int64(len(sc.body)) != x.bodyLen {
		return
	}
	l := ip.endpoints()
	if len(l.states) == 0 {
		return
	}
	e := l.states[kv.rr.Add(1)%uint64(len(l.states))]
	scheme := "http://"
	if ip.pool.Load().cfg.TLS != nil {
		scheme = "https://"
	}
	toks, err := kv.tok.Tokens(x.Context(), scheme+e.Addr, sc.body)
	if err != nil {
		return
	}
	req.TokenBlocks = cache.TokenBlocks(cache.TokenSeed(""), toks, bs, req.TokenBlocks)
}
