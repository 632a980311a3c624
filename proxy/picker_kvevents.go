package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

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
	mu     sync.Mutex // guards subs: the scrape loop writes, metrics read
	subs   map[*pick.Endpoint]*kvSub
	wg     sync.WaitGroup
	rr     atomic.Uint64
}

type kvSub struct {
	s      *kvevents.Subscriber
	cancel context.CancelFunc
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
		kv = &kvState{cfg: *in.KVEvents, client: c, subs: map[*pick.Endpoint]*kvSub{},
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
		s := kvevents.NewSubscriber(kvevents.Options{
			Endpoint: config.KVEventsAddress(kv.cfg.Endpoint, e.Addr), Replay: config.KVEventsAddress(kv.cfg.ReplayEndpoint, e.Addr),
			Topic: kv.cfg.Topic, Name: e.Addr, Index: ip.picks().Tokens(),
			MinBackoff: config.DefaultKVMinBackoff, MaxBackoff: config.DefaultKVMaxBackoff,
			ReplayTimeout: kv.cfg.ReplayTimeout.D(), ProbeAfter: config.DefaultKVProbeAfter,
			Log: log.With("pool", ip.name),
		})
		kv.mu.Lock()
		kv.subs[e] = &kvSub{s, cancel}
		kv.mu.Unlock()
		kv.wg.Add(1)
		go func() { defer kv.wg.Done(); s.Run(sctx) }()
	}
	kv.mu.Lock()
	for e, sub := range kv.subs {
		if !seen[e] {
			sub.cancel()
			delete(kv.subs, e)
		}
	}
	kv.mu.Unlock()
}

// stopKV stops every subscriber of ip's precise mode and turns it off.
func (ip *infPool) stopKV() {
	kv := ip.kv.Swap(nil)
	if kv == nil {
		return
	}
	kv.mu.Lock()
	for _, sub := range kv.subs {
		sub.cancel()
	}
	kv.mu.Unlock()
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
	if len(l.eps) == 0 {
		return
	}
	// The base URL was built with the endpoint: a request that finds its
	// tokens in the cache allocates nothing here.
	e := l.eps[kv.rr.Add(1)%uint64(len(l.eps))]
	toks, err := kv.tok.Tokens(x.Context(), e.base, sc.body)
	if err != nil {
		return
	}
	// A model name some endpoint stored blocks under as a LoRA adapter is
	// matched on the adapter's chain; any other on the base model's.
	seed := cache.TokenSeed("")
	if m := sc.prompt.Model; m != "" && len(toks) >= bs {
		if s := cache.TokenSeed(m); ip.picks().Tokens().Held(cache.TokenBlockHash(s, toks[:bs])) {
			seed = s
		}
	}
	req.TokenBlocks = cache.TokenBlocks(seed, toks, bs, req.TokenBlocks)
}

var (
	descKVBatches    = endpointDesc("kvgate_kv_events_batches_total", "KV event batches applied (published and replayed).")
	descKVReplayed   = endpointDesc("kvgate_kv_events_replayed_total", "KV event batches recovered from the replay socket.")
	descKVGaps       = endpointDesc("kvgate_kv_events_gaps_total", "Sequence gaps seen in the KV event stream.")
	descKVLost       = endpointDesc("kvgate_kv_events_lost_total", "KV event batches that could not be replayed (each loss clears the endpoint's precise state).")
	descKVReconnects = endpointDesc("kvgate_kv_events_reconnects_total", "KV event subscriptions made again.")
	descKVDecodeErrs = endpointDesc("kvgate_kv_events_decode_errors_total", "KV event messages skipped as malformed.")
	descKVOrphans    = endpointDesc("kvgate_kv_events_orphan_blocks_total", "Stored blocks not indexed: unknown parent or another block size.")
	descKVBlocks     = endpointDesc("kvgate_kv_events_blocks", "Blocks the endpoint's KV events say it caches.")
	descKVLive       = endpointDesc("kvgate_kv_events_live", "1 when the endpoint is picked on its KV events, 0 when on the approximate index (not subscribed, out of sequence, or stale).")
	descTokHits      = desc("kvgate_tokenize_cache_hits_total", "Prompts whose token ids came from the tokenize cache.", "pool")
	descTokCalls     = desc("kvgate_tokenize_calls_total", "Calls to the model servers' tokenize endpoint.", "pool")
	descTokFailures  = desc("kvgate_tokenize_failures_total", "Tokenize calls that failed or timed out (the request was picked approximately).", "pool")
)

// collectKVEvents sends precise mode's series of pool name, when it is on.
func collectKVEvents(e emitter, name string, ip *infPool) {
	kv := ip.kv.Load()
	if kv == nil {
		return
	}
	ts := kv.tok.Stats()
	e.counter(descTokHits, float64(ts.Hits), name)
	e.counter(descTokCalls, float64(ts.Misses), name)
	e.counter(descTokFailures, float64(ts.Failures), name)
	x := ip.picks().Tokens()
	now := time.Now().UnixNano()
	kv.mu.Lock()
	defer kv.mu.Unlock()
	for ep, sub := range kv.subs {
		st, s := sub.s.Stats(), x.Lookup(ep.Addr)
		xs := x.Stats(s)
		live := 0.0
		if s >= 0 && x.Live(s, now) {
			live = 1
		}
		e.counter(descKVBatches, float64(st.Batches), name, ep.Addr)
		e.counter(descKVReplayed, float64(st.Replayed), name, ep.Addr)
		e.counter(descKVGaps, float64(st.Gaps), name, ep.Addr)
		e.counter(descKVLost, float64(st.Lost), name, ep.Addr)
		e.counter(descKVReconnects, float64(st.Reconnects), name, ep.Addr)
		e.counter(descKVDecodeErrs, float64(st.DecodeErrors), name, ep.Addr)
		e.counter(descKVOrphans, float64(xs.Orphans), name, ep.Addr)
		e.gauge(descKVBlocks, float64(xs.Blocks), name, ep.Addr)
		e.gauge(descKVLive, live, name, ep.Addr)
	}
}
