package sim

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"sync"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/vmihailenco/msgpack/v5"
)

// KVEventsConfig makes the simulator publish its prefix cache's changes as
// vLLM does with --kv-events-config '{"enable_kv_cache_events": true,
// "publisher": "zmq", ...}': a ZMQ PUB socket sending multipart messages
// (topic, 8-byte big-endian sequence number, msgpack KVEventBatch), and a
// ROUTER socket answering replay requests. See the package comment.
type KVEventsConfig struct {
	// Endpoint is the PUB socket's address, e.g. tcp://127.0.0.1:5557
	// (port 0 picks a free one; Running.KVEvents says which). "" disables
	// publishing.
	Endpoint string
	// Replay is the ROUTER socket's address; "" serves no replay.
	Replay string
	// Topic is the first frame of every message; vLLM's default is "".
	Topic string
	// BufferSteps is how many batches are kept for replay; 0 means 10000,
	// vLLM's default.
	BufferSteps int
}

// kvEvent is one event the engine hands to the publisher.
type kvEvent struct {
	removed bool
	hashes  []uint64
	parent  uint64
	hasPar  bool
	tokens  []uint32
}

type seqPayload struct {
	seq     uint64
	payload []byte
}

// KVPublisher publishes one simulator's KV events. Its methods are safe
// for concurrent use.
type KVPublisher struct {
	topic []byte
	pub   zmq4.Socket
	rtr   zmq4.Socket
	ch    chan []kvEvent
	done  chan struct{}
	wg    sync.WaitGroup

	// Endpoint and ReplayEndpoint are the bound addresses (tcp://host:port);
	// ReplayEndpoint is "" without a replay socket.
	Endpoint, ReplayEndpoint string

	mu    sync.Mutex
	seq   uint64
	buf   []seqPayload // ring of the last len(buf) batches
	next  int
	full  bool
	drop  int
	sent  uint64
	enc   *msgpack.Encoder
	ebuf  bytes.Buffer
	steps int
}

var zmqQuiet = zmq4.WithLogger(log.New(io.Discard, "", 0))

func startKVPublisher(c KVEventsConfig) (*KVPublisher, error) {
	steps := c.BufferSteps
	if steps <= 0 {
		steps = 10000
	}
	p := &KVPublisher{
		topic: []byte(c.Topic), ch: make(chan []kvEvent, 1<<12), done: make(chan struct{}),
		buf: make([]seqPayload, steps), steps: steps,
	}
	p.enc = msgpack.NewEncoder(&p.ebuf)
	p.pub = zmq4.NewPub(context.Background(), zmqQuiet)
	if err := p.pub.Listen(c.Endpoint); err != nil {
		_ = p.pub.Close()
		return nil, fmt.Errorf("sim: kv events PUB on %s: %w; pick a free address or port 0", c.Endpoint, err)
	}
	p.Endpoint = "tcp://" + p.pub.Addr().String()
	if c.Replay != "" {
		p.rtr = zmq4.NewRouter(context.Background(), zmqQuiet)
		if err := p.rtr.Listen(c.Replay); err != nil {
			_ = p.pub.Close()
			_ = p.rtr.Close()
			return nil, fmt.Errorf("sim: kv events replay ROUTER on %s: %w; pick a free address or port 0", c.Replay, err)
		}
		p.ReplayEndpoint = "tcp://" + p.rtr.Addr().String()
		p.wg.Add(1)
		go p.serveReplay()
	}
	p.wg.Add(1)
	go p.run()
	return p, nil
}

// DropNext makes the next n batches skip the PUB socket (they are still
// numbered and kept for replay), as a subscriber that fell behind loses
// them: a fault injection for tests and demos.
func (p *KVPublisher) DropNext(n int) {
	p.mu.Lock()
	p.drop += n
	p.mu.Unlock()
}

// Published returns how many batches were numbered so far.
func (p *KVPublisher) Published() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seq
}

// Flush waits until every event handed over so far is published.
func (p *KVPublisher) Flush() {
	for len(p.ch) > 0 {
		time.Sleep(time.Millisecond)
	}
	p.mu.Lock()
	p.mu.Unlock() //nolint:staticcheck // waits for a batch being sent
}

func (p *KVPublisher) enqueue(evs []kvEvent) {
	if len(evs) == 0 {
		return
	}
	select {
	case p.ch <- evs:
	case <-p.done:
	}
}

func (p *KVPublisher) close() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.done)
	_ = p.pub.Close()
	if p.rtr != nil {
		_ = p.rtr.Close()
	}
	p.wg.Wait()
}

func (p *KVPublisher) run() {
	defer p.wg.Done()
	for {
		select {
		case <-p.done:
			return
		case evs := <-p.ch:
			p.publish(evs)
		}
	}
}

// publish numbers, encodes and sends one batch.
func (p *KVPublisher) publish(evs []kvEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	payload := p.encode(evs)
	seq := p.seq
	p.seq++
	p.buf[p.next] = seqPayload{seq, payload}
	p.next = (p.next + 1) % len(p.buf)
	p.full = p.full || p.next == 0
	if p.drop > 0 {
		p.drop--
		return
	}
	var sb [8]byte
	binary.BigEndian.PutUint64(sb[:], seq)
	_ = p.pub.Send(zmq4.NewMsgFrom(p.topic, sb[:], payload))
	p.sent++
}

// encode writes a KVEventBatch as current vLLM releases do: msgspec structs
// without array_like, so the batch and each event are maps, each event
// tagged by a "type" key; fields without a default are always present
// (nil when None), defaulted ones omitted.
func (p *KVPublisher) encode(evs []kvEvent) []byte {
	p.ebuf.Reset()
	e := p.enc
	_ = e.EncodeMapLen(3)
	_ = e.EncodeString("ts")
	_ = e.EncodeFloat64(float64(time.Now().UnixNano()) / 1e9)
	_ = e.EncodeString("events")
	_ = e.EncodeArrayLen(len(evs))
	for _, ev := range evs {
		if ev.removed {
			_ = e.EncodeMapLen(3)
			_ = e.EncodeString("type")
			_ = e.EncodeString("BlockRemoved")
			p.hashes(ev.hashes)
			_ = e.EncodeString("medium")
			_ = e.EncodeString("GPU")
			continue
		}
		_ = e.EncodeMapLen(8)
		_ = e.EncodeString("type")
		_ = e.EncodeString("BlockStored")
		p.hashes(ev.hashes)
		_ = e.EncodeString("parent_block_hash")
		if ev.hasPar {
			_ = e.EncodeUint64(ev.parent)
		} else {
			_ = e.EncodeNil()
		}
		_ = e.EncodeString("token_ids")
		_ = e.EncodeArrayLen(len(ev.tokens))
		for _, t := range ev.tokens {
			_ = e.EncodeUint(uint64(t))
		}
		_ = e.EncodeString("block_size")
		_ = e.EncodeInt(BlockTokens)
		_ = e.EncodeString("lora_id")
		_ = e.EncodeNil()
		_ = e.EncodeString("medium")
		_ = e.EncodeString("GPU")
		_ = e.EncodeString("lora_name")
		_ = e.EncodeNil()
	}
	_ = e.EncodeString("data_parallel_rank")
	_ = e.EncodeInt(0)
	return bytes.Clone(p.ebuf.Bytes())
}

func (p *KVPublisher) hashes(hs []uint64) {
	_ = p.enc.EncodeString("block_hashes")
	_ = p.enc.EncodeArrayLen(len(hs))
	for _, h := range hs {
		_ = p.enc.EncodeUint64(h)
	}
}

// serveReplay answers replay requests as vLLM's publisher does: a request
// is [identity, "", start sequence (8 bytes, big endian)]; the answer is
// every kept batch from that sequence on, each [identity, "", seq,
// payload], then [identity, "", -1 (8 bytes), ""].
func (p *KVPublisher) serveReplay() {
	defer p.wg.Done()
	for {
		m, err := p.rtr.Recv()
		if err != nil {
			return
		}
		if len(m.Frames) != 3 || len(m.Frames[2]) != 8 {
			continue
		}
		id := m.Frames[0]
		from := binary.BigEndian.Uint64(m.Frames[2])
		p.mu.Lock()
		var out []seqPayload
		n := p.next
		if p.full {
			n = len(p.buf)
		}
		for i := range n {
			sp := p.buf[(p.next-n+i+len(p.buf))%len(p.buf)]
			if sp.seq >= from {
				out = append(out, sp)
			}
		}
		p.mu.Unlock()
		for _, sp := range out {
			var sb [8]byte
			binary.BigEndian.PutUint64(sb[:], sp.seq)
			if p.rtr.Send(zmq4.NewMsgFrom(id, []byte{}, sb[:], sp.payload)) != nil {
				break
			}
		}
		end := [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		_ = p.rtr.Send(zmq4.NewMsgFrom(id, []byte{}, end[:], []byte{}))
	}
}

// TokenIDs is the simulator's stand-in tokenizer as token ids: each
// CharsPerToken bytes of text, zero-padded at the end, read as a
// little-endian uint32. Equal texts give equal ids, so the ids of a block
// stand for its text exactly.
func TokenIDs(text string) []uint32 {
	out := make([]uint32, 0, promptTokens(text))
	for i := 0; i < len(text); i += CharsPerToken {
		var b [4]byte
		copy(b[:], text[i:min(i+CharsPerToken, len(text))])
		out = append(out, binary.LittleEndian.Uint32(b[:]))
	}
	return out
}
