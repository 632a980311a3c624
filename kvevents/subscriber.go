package kvevents

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/kvgate/kvgate/cache"
)

// Options configures one endpoint's Subscriber. Every field is used as
// given: package config holds the defaults and the proxy fills them in.
type Options struct {
	// Endpoint is the publisher's ZMQ address, e.g. tcp://10.0.0.5:5557.
	Endpoint string
	// Replay is the publisher's replay (ROUTER) address; "" disables gap
	// replay: a gap then clears the endpoint's index.
	Replay string
	// Topic is the subscription prefix; "" receives every topic.
	Topic string
	// Name is the endpoint's name in Index (its address in the pool).
	Name string
	// Index receives the events.
	Index *cache.TokenIndex
	// MinBackoff and MaxBackoff bound the wait between reconnections,
	// doubling from one to the other with jitter.
	MinBackoff, MaxBackoff time.Duration
	// ReplayTimeout bounds one replay request, from the request to the
	// end-of-replay marker.
	ReplayTimeout time.Duration
	// ProbeAfter is how long the stream may stay silent before the
	// subscriber checks the publisher: a replay request from the next
	// sequence number (which also recovers anything the subscription
	// missed) or, without a replay address, a fresh subscription.
	ProbeAfter time.Duration
	// Log receives reconnections, gaps and losses; nil discards them.
	Log *slog.Logger
}

// Stats are a Subscriber's counters since it started.
type Stats struct {
	Batches      uint64 // batches applied (published and replayed)
	Replayed     uint64 // batches applied from replays
	Gaps         uint64 // sequence gaps seen
	Lost         uint64 // batches that could not be replayed (the index was cleared)
	Restarts     uint64 // publisher restarts seen (sequence going back)
	Reconnects   uint64 // subscription sessions after the first
	DecodeErrors uint64 // payloads that did not decode (skipped)
}

// Subscriber follows one endpoint's KV events into its slot of a
// cache.TokenIndex: it subscribes, checks every sequence number, replays
// gaps from the replay socket, and reconnects with backoff. Its memory is
// bounded: one decoded batch at a time and a small receive queue.
type Subscriber struct {
	o   Options
	dec *Decoder
	log *slog.Logger

	have bool   // last is set
	last uint64 // last applied sequence number

	batches, replayed, gaps, lost, restarts, reconnects, decodeErrs atomic.Uint64
}

// endReplay is the sequence frame of vLLM's end-of-replay marker: -1 as a
// signed 64-bit big-endian integer.
const endReplay = math.MaxUint64

// NewSubscriber returns a Subscriber for o; Run starts it.
func NewSubscriber(o Options) *Subscriber {
	l := o.Log
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Subscriber{o: o, dec: NewDecoder(), log: l.With("kvEvents", o.Endpoint, "endpoint", o.Name)}
}

// Stats returns the counters.
func (s *Subscriber) Stats() Stats {
	return Stats{
		Batches: s.batches.Load(), Replayed: s.replayed.Load(), Gaps: s.gaps.Load(), Lost: s.lost.Load(),
		Restarts: s.restarts.Load(), Reconnects: s.reconnects.Load(), DecodeErrors: s.decodeErrs.Load(),
	}
}

// Run follows the stream until ctx ends. The endpoint is marked synced in
// the index while a subscription is up and in sequence.
func (s *Subscriber) Run(ctx context.Context) {
	backoff := s.o.MinBackoff
	for first := true; ctx.Err() == nil; first = false {
		if !first {
			s.reconnects.Add(1)
		}
		start := time.Now()
		err := s.session(ctx)
		s.setSynced(false)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > s.o.MaxBackoff {
			backoff = s.o.MinBackoff // it ran well for a while: start over
		}
		s.log.Warn("kv events subscription ended; reconnecting", "err", err, "backoff", backoff.String())
		wait := backoff/2 + time.Duration(mrand.Int64N(int64(backoff/2)+1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(2*backoff, s.o.MaxBackoff)
	}
}

func (s *Subscriber) slot() int { return s.o.Index.Lookup(s.o.Name) }

func (s *Subscriber) setSynced(ok bool) {
	if sl := s.slot(); sl >= 0 {
		s.o.Index.SetSynced(sl, ok)
	}
}

// firstProbe is when a session first checks the replay socket.
const firstProbe = 250 * time.Millisecond

var quiet = zmq4.WithLogger(log.New(io.Discard, "", 0))

// errSilent ends a session whose stream stayed silent with no replay
// socket to ask: the subscription is made again.
var errSilent = errors.New("kvevents: no event for the probe interval and no replay socket to ask; subscribing again")

// session runs one subscription until it fails or ctx ends.
func (s *Subscriber) session(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub := zmq4.NewSub(sctx, quiet, zmq4.WithDialerMaxRetries(0), zmq4.WithDialerTimeout(max(s.o.ReplayTimeout, time.Second)))
	defer sub.Close()
	if err := sub.Dial(s.o.Endpoint); err != nil {
		return fmt.Errorf("kvevents: subscribe to %s: %w", s.o.Endpoint, err)
	}
	if err := sub.SetOption(zmq4.OptionSubscribe, s.o.Topic); err != nil {
		return err
	}
	msgs := make(chan zmq4.Msg, 16)
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := sub.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case msgs <- m:
			case <-sctx.Done():
				return
			}
		}
	}()
	fresh := true // no message yet in this session
	missed := 0   // consecutive probes whose replay returned batches
	// The first probe comes early: with a replay socket it proves a
	// publisher that has published nothing yet (an idle server) reachable.
	probe := time.NewTimer(min(s.o.ProbeAfter, firstProbe))
	defer probe.Stop()
	if s.have {
		// The stream was followed before: mark it synced only once this
		// session has proved it continues without a loss.
	} else {
		s.setSynced(false)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			return fmt.Errorf("kvevents: receive from %s: %w", s.o.Endpoint, err)
		case m := <-msgs:
			if err := s.handle(ctx, m, fresh); err != nil {
				return err
			}
			fresh, missed = false, 0
			s.setSynced(true)
			probe.Reset(s.o.ProbeAfter)
		case <-probe.C:
			if s.o.Replay == "" {
				if fresh && !s.have {
					// Nothing ever published: keep the subscription,
					// the endpoint stays out of precise picking.
					probe.Reset(s.o.ProbeAfter)
					continue
				}
				return errSilent
			}
			n, err := s.replay(ctx, s.next(), math.MaxUint64)
			if err != nil {
				return err
			}
			if missed = missed + min(n, 1); missed > 1 {
				// Twice in a row the replay returned what the
				// subscription did not deliver: it is broken.
				return fmt.Errorf("kvevents: the subscription missed %d batches the replay returned; subscribing again", n)
			}
			s.setSynced(true) // reachable, and nothing is missing
			probe.Reset(s.o.ProbeAfter)
		}
	}
}

func (s *Subscriber) next() uint64 {
	if s.have {
		return s.last + 1
	}
	return 0
}

// handle checks one published message's sequence number, replays what is
// missing before it, and applies it.
func (s *Subscriber) handle(ctx context.Context, m zmq4.Msg, fresh bool) error {
	if len(m.Frames) != 3 || len(m.Frames[1]) != 8 {
		s.decodeErrs.Add(1)
		return nil // not a KV event message: skip it
	}
	seq := binary.BigEndian.Uint64(m.Frames[1])
	switch {
	case s.have && seq <= s.last:
		// The sequence went back: the publisher restarted with an empty
		// cache and a new sequence.
		s.restarts.Add(1)
		s.log.Info("kv events publisher restarted; clearing the endpoint's index", "seq", seq, "last", s.last)
		if sl := s.slot(); sl >= 0 {
			s.o.Index.Cleared(sl)
		}
		s.have = false
		if seq > 0 {
			if err := s.fill(ctx, 0, seq); err != nil {
				return err
			}
		}
	case s.have && seq > s.last+1:
		s.gaps.Add(1)
		if err := s.fill(ctx, s.last+1, seq); err != nil {
			return err
		}
	case !s.have && seq > 0 && fresh:
		// A late subscriber: ask for the history the publisher kept.
		if err := s.fill(ctx, 0, seq); err != nil {
			return err
		}
	}
	s.apply(seq, m.Frames[2], false)
	return nil
}

// fill replays [from, upto) before the message upto is applied. Without a
// replay socket, or when the publisher no longer holds all of it, the
// missing batches are lost: the endpoint's index is cleared (it may have
// missed removals, and an index that over-states is worse than one that
// under-states), and it fills again from the events that follow.
func (s *Subscriber) fill(ctx context.Context, from, upto uint64) error {
	had := s.have
	if s.o.Replay != "" {
		if _, err := s.replay(ctx, from, upto); err != nil {
			s.log.Warn("kv events replay failed", "from", from, "upto", upto, "err", err)
		}
	}
	if !had {
		return nil // history of a new stream: whatever the publisher still had
	}
	if s.have && s.last+1 == upto {
		return nil
	}
	s.lost.Add(upto - s.last - 1)
	s.log.Warn("kv events lost; clearing the endpoint's index", "from", s.last+1, "upto", upto)
	if sl := s.slot(); sl >= 0 {
		s.o.Index.Cleared(sl)
	}
	s.have = false
	return nil
}

// replay asks the replay socket for every batch from `from` and applies
// those before upto in order. It returns how many it applied.
func (s *Subscriber) replay(ctx context.Context, from, upto uint64) (int, error) {
	rctx, cancel := context.WithTimeout(ctx, s.o.ReplayTimeout)
	defer cancel()
	var id [8]byte
	_, _ = rand.Read(id[:])
	d := zmq4.NewDealer(rctx, quiet, zmq4.WithDialerMaxRetries(0), zmq4.WithDialerTimeout(s.o.ReplayTimeout),
		zmq4.WithID(zmq4.SocketIdentity("kvgate-"+hex.EncodeToString(id[:]))))
	defer d.Close()
	if err := d.Dial(s.o.Replay); err != nil {
		return 0, fmt.Errorf("kvevents: replay socket %s: %w", s.o.Replay, err)
	}
	var req [8]byte
	binary.BigEndian.PutUint64(req[:], from)
	if err := d.Send(zmq4.NewMsgFrom([]byte{}, req[:])); err != nil {
		return 0, fmt.Errorf("kvevents: replay request to %s: %w", s.o.Replay, err)
	}
	n := 0
	for {
		m, err := d.Recv()
		if err != nil {
			return n, fmt.Errorf("kvevents: replay from %s: %w (no end-of-replay marker within %s)", s.o.Replay, err, s.o.ReplayTimeout)
		}
		f := m.Frames
		if len(f) > 0 && len(f[0]) == 0 {
			f = f[1:] // the empty delimiter a ROUTER puts before a DEALER's reply
		}
		if len(f) != 2 || len(f[0]) != 8 {
			return n, fmt.Errorf("kvevents: replay from %s sent %d frames, want [seq, payload]", s.o.Replay, len(f))
		}
		seq := binary.BigEndian.Uint64(f[0])
		if seq == endReplay && len(f[1]) == 0 {
			return n, nil
		}
		if seq >= upto {
			continue // the subscription delivers it
		}
		if s.have && seq != s.last+1 || !s.have && seq < from {
			continue // already applied, or past a hole fill reports
		}
		s.apply(seq, f[1], true)
		n++
	}
}

// apply decodes one payload into the index and advances the sequence.
func (s *Subscriber) apply(seq uint64, payload []byte, replayed bool) {
	s.have, s.last = true, seq
	b, err := s.dec.Decode(payload)
	if err != nil {
		s.decodeErrs.Add(1)
		s.log.Warn("kv event batch skipped", "seq", seq, "err", err)
		return
	}
	s.batches.Add(1)
	if replayed {
		s.replayed.Add(1)
	}
	sl := s.slot()
	if sl < 0 {
		return
	}
	x := s.o.Index
	for i := range b.Events {
		ev := &b.Events[i]
		if ev.Group != 0 || ev.Medium != "" && !strings.EqualFold(ev.Medium, "GPU") {
			continue // another KV-cache group or tier: not what prefill reuses first
		}
		switch ev.Kind {
		case BlockStored:
			x.Stored(sl, ev.BlockHashes, ev.Parent, ev.HasParent, ev.TokenIDs, ev.BlockSize, cache.TokenSeed(loraKey(ev)))
		case BlockRemoved:
			x.Removed(sl, ev.BlockHashes)
		case AllBlocksCleared:
			x.Cleared(sl)
		}
	}
}

// loraKey names the adapter blocks were computed with: its name, else its
// id (older engines), else "" for the base model.
func loraKey(ev *Event) string {
	if ev.LoRAName != "" {
		return ev.LoRAName
	}
	if ev.HasLoRAID {
		return "lora-id:" + strconv.FormatInt(ev.LoRAID, 10)
	}
	return ""
}
