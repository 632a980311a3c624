package kvevents

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	"github.com/cespare/xxhash/v2"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Kind is the type of one KV-cache event.
type Kind uint8

// The event kinds vLLM publishes (the msgspec tag of each struct).
const (
	BlockStored Kind = iota + 1
	BlockRemoved
	AllBlocksCleared
)

var kindNames = [...]string{BlockStored: "BlockStored", BlockRemoved: "BlockRemoved", AllBlocksCleared: "AllBlocksCleared"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// Event is one decoded event. Fields a kind does not carry are zero.
type Event struct {
	Kind Kind
	// BlockHashes are the engine's hashes of the blocks stored or removed,
	// in chain order. An integer hash is kept as its 64 bits; a bytes hash
	// (vLLM's sha256 option) is folded to 64 bits with xxhash64. kvgate uses
	// them only to name blocks in later BlockRemoved events, never to match
	// prompts.
	BlockHashes []uint64
	// Parent is the engine hash of the block before the first stored one;
	// HasParent is false for a chain that starts at the prompt's beginning.
	Parent    uint64
	HasParent bool
	// TokenIDs are the tokens of every stored block, BlockSize per block.
	TokenIDs  []uint32
	BlockSize int
	// LoRAName (or, from older engines, LoRAID when HasLoRAID) names the
	// adapter the blocks were computed with; empty and false for the base
	// model.
	LoRAName  string
	LoRAID    int64
	HasLoRAID bool
	// Medium is where the blocks live ("GPU", "CPU", ...); "" when not sent.
	Medium string
	// Group is the KV-cache group of a hybrid model (group_idx); 0 when not sent.
	Group int64
}

// Batch is one published message: vLLM's KVEventBatch.
type Batch struct {
	// TS is the engine's wall clock, in seconds since the epoch.
	TS     float64
	Events []Event
	// DPRank is the data-parallel rank (data_parallel_rank); -1 when not sent.
	DPRank int64
}

// Limits on one payload, so that a hostile or broken publisher cannot make
// the decoder allocate without bound. Real batches are far smaller: one
// engine step stores at most a few thousand blocks.
const (
	// MaxPayloadBytes bounds one message's payload.
	MaxPayloadBytes = 64 << 20
	maxEvents       = 1 << 16
	maxHashes       = 1 << 20
	maxTokens       = 1 << 24
	maxBlockSize    = 1 << 16
	maxDepth        = 32
)

// ErrMalformed wraps every decoding error.
var ErrMalformed = errors.New("kvevents: malformed event batch")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// Decoder decodes payloads. Its buffers are reused from one Decode to the
// next, so a Batch it returned is valid only until the next call. A Decoder
// is not safe for concurrent use.
type Decoder struct {
	r     bytes.Reader
	d     *msgpack.Decoder
	batch Batch
}

// NewDecoder returns a Decoder.
func NewDecoder() *Decoder {
	dec := &Decoder{}
	dec.d = msgpack.NewDecoder(&dec.r)
	return dec
}

// Decode decodes one payload, the third frame of a published message or the
// second of a replayed one. It accepts both encodings vLLM has used: the
// batch as a msgpack array [ts, events, data_parallel_rank?] or a map
// {"ts", "events", "data_parallel_rank"}; each event as an array led by its
// tag (msgspec array_like, older releases) or a map with a "type" key
// (newer releases). Fields are read by name in maps and by position in
// arrays; unknown map keys and trailing array elements are skipped, and
// absent optional fields are zero, so releases that add fields still decode.
func (dec *Decoder) Decode(payload []byte) (*Batch, error) {
	if len(payload) > MaxPayloadBytes {
		return nil, malformed("payload of %d bytes is over %d", len(payload), MaxPayloadBytes)
	}
	dec.r.Reset(payload)
	dec.d.Reset(&dec.r)
	b := &dec.batch
	evs := b.Events[:0]
	*b = Batch{DPRank: -1}
	b.Events = evs
	if err := dec.batchBody(b); err != nil {
		return nil, err
	}
	return b, nil
}

func (dec *Decoder) remaining() int { return dec.r.Len() }

// length checks a container length against the bytes left: every element
// takes at least one byte, so a longer claim is a lie.
func (dec *Decoder) length(n int, limit int, what string) error {
	if n < 0 {
		return nil
	}
	if n > limit || n > dec.remaining() {
		return malformed("%s claims %d elements", what, n)
	}
	return nil
}

func (dec *Decoder) batchBody(b *Batch) error {
	c, err := dec.d.PeekCode()
	if err != nil {
		return malformed("empty payload")
	}
	switch {
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, _ := dec.d.DecodeArrayLen()
		if err := dec.length(n, 1<<10, "batch"); err != nil {
			return err
		}
		if n < 2 {
			return malformed("batch array has %d elements, want [ts, events, ...]", n)
		}
		if b.TS, err = dec.float(); err != nil {
			return err
		}
		if err := dec.events(b); err != nil {
			return err
		}
		if n >= 3 {
			if b.DPRank, err = dec.optInt(-1); err != nil {
				return err
			}
		}
		return dec.skipN(n - 3)
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, _ := dec.d.DecodeMapLen()
		if err := dec.length(n, 1<<10, "batch"); err != nil {
			return err
		}
		seen := false
		for range n {
			k, err := dec.key()
			if err != nil {
				return err
			}
			switch k {
			case "ts":
				b.TS, err = dec.float()
			case "events":
				err, seen = dec.events(b), true
			case "data_parallel_rank":
				b.DPRank, err = dec.optInt(-1)
			default:
				err = dec.skip()
			}
			if err != nil {
				return err
			}
		}
		if !seen {
			return malformed("batch map has no events")
		}
		return nil
	}
	return malformed("batch is msgpack type 0x%02x, want an array or a map", c)
}

func (dec *Decoder) events(b *Batch) error {
	n, err := dec.d.DecodeArrayLen()
	if err != nil {
		return malformed("events: %v", err)
	}
	if err := dec.length(n, maxEvents, "events"); err != nil {
		return err
	}
	for range max(n, 0) {
		i := len(b.Events)
		if i < cap(b.Events) {
			b.Events = b.Events[:i+1]
			ev := &b.Events[i]
			hs, ts := ev.BlockHashes[:0], ev.TokenIDs[:0]
			*ev = Event{BlockHashes: hs, TokenIDs: ts}
		} else {
			b.Events = append(b.Events, Event{})
		}
		if err := dec.event(&b.Events[i]); err != nil {
			return err
		}
	}
	return nil
}

// Positions of the fields of each event in the array form, after the tag.
var (
	storedFields  = []string{"block_hashes", "parent_block_hash", "token_ids", "block_size", "lora_id", "medium", "lora_name", "extra_keys", "group_idx"}
	removedFields = []string{"block_hashes", "medium", "group_idx"}
)

func kindOf(tag string) Kind {
	switch tag {
	case "BlockStored":
		return BlockStored
	case "BlockRemoved":
		return BlockRemoved
	case "AllBlocksCleared":
		return AllBlocksCleared
	}
	return 0
}

func (dec *Decoder) event(ev *Event) error {
	c, err := dec.d.PeekCode()
	if err != nil {
		return malformed("truncated event")
	}
	switch {
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, _ := dec.d.DecodeArrayLen()
		if err := dec.length(n, 64, "event"); err != nil {
			return err
		}
		if n < 1 {
			return malformed("event array is empty, want its tag first")
		}
		tag, err := dec.str()
		if err != nil {
			return err
		}
		if ev.Kind = kindOf(tag); ev.Kind == 0 {
			return malformed("unknown event tag %q", tag)
		}
		var names []string
		switch ev.Kind {
		case BlockStored:
			names = storedFields
		case BlockRemoved:
			names = removedFields
		}
		for i := 1; i < n; i++ {
			name := ""
			if i-1 < len(names) {
				name = names[i-1]
			}
			if err := dec.field(ev, name); err != nil {
				return err
			}
		}
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, _ := dec.d.DecodeMapLen()
		if err := dec.length(n, 64, "event"); err != nil {
			return err
		}
		for range n {
			k, err := dec.key()
			if err != nil {
				return err
			}
			if k == "type" {
				tag, err := dec.str()
				if err != nil {
					return err
				}
				if ev.Kind = kindOf(tag); ev.Kind == 0 {
					return malformed("unknown event tag %q", tag)
				}
				continue
			}
			if err := dec.field(ev, k); err != nil {
				return err
			}
		}
		if ev.Kind == 0 {
			return malformed("event map has no \"type\"")
		}
	default:
		return malformed("event is msgpack type 0x%02x, want an array or a map", c)
	}
	if ev.Kind == BlockStored {
		if ev.BlockSize <= 0 || ev.BlockSize > maxBlockSize {
			return malformed("BlockStored block_size %d", ev.BlockSize)
		}
		if len(ev.TokenIDs) != len(ev.BlockHashes)*ev.BlockSize {
			return malformed("BlockStored has %d token ids for %d blocks of %d", len(ev.TokenIDs), len(ev.BlockHashes), ev.BlockSize)
		}
	}
	return nil
}

// field decodes the value of one named field into ev (skipping unknown ones).
func (dec *Decoder) field(ev *Event, name string) error {
	var err error
	switch name {
	case "block_hashes":
		ev.BlockHashes, err = dec.hashes(ev.BlockHashes[:0])
	case "parent_block_hash":
		if dec.nil() {
			ev.HasParent = false
			return nil
		}
		ev.Parent, err = dec.hash()
		ev.HasParent = err == nil
	case "token_ids":
		ev.TokenIDs, err = dec.tokens(ev.TokenIDs[:0])
	case "block_size":
		var v int64
		v, err = dec.optInt(0)
		ev.BlockSize = int(max(min(v, math.MaxInt32), math.MinInt32))
	case "lora_id":
		if dec.nil() {
			return nil
		}
		ev.LoRAID, err = dec.int()
		ev.HasLoRAID = err == nil
	case "medium":
		ev.Medium, err = dec.optStr()
	case "lora_name":
		ev.LoRAName, err = dec.optStr()
	case "group_idx":
		ev.Group, err = dec.optInt(0)
	default:
		err = dec.skip()
	}
	return err
}

func (dec *Decoder) nil() bool {
	c, err := dec.d.PeekCode()
	if err == nil && c == msgpcode.Nil {
		_ = dec.d.DecodeNil()
		return true
	}
	return false
}

func (dec *Decoder) key() (string, error) {
	k, err := dec.d.DecodeString()
	if err != nil {
		return "", malformed("map key: %v", err)
	}
	return k, nil
}

func (dec *Decoder) str() (string, error) {
	s, err := dec.d.DecodeString()
	if err != nil {
		return "", malformed("string: %v", err)
	}
	return s, nil
}

func (dec *Decoder) optStr() (string, error) {
	if dec.nil() {
		return "", nil
	}
	return dec.str()
}

func (dec *Decoder) float() (float64, error) {
	f, err := dec.d.DecodeFloat64() // also reads integers
	if err != nil {
		return 0, malformed("number: %v", err)
	}
	return f, nil
}

func (dec *Decoder) int() (int64, error) {
	v, err := dec.d.DecodeInt64()
	if err != nil {
		return 0, malformed("integer: %v", err)
	}
	return v, nil
}

func (dec *Decoder) optInt(def int64) (int64, error) {
	if dec.nil() {
		return def, nil
	}
	return dec.int()
}

// hash reads an engine block hash: an integer (its 64 bits) or bytes
// (folded with xxhash64).
func (dec *Decoder) hash() (uint64, error) {
	c, err := dec.d.PeekCode()
	if err != nil {
		return 0, malformed("truncated block hash")
	}
	switch {
	case msgpcode.IsBin(c) || msgpcode.IsString(c):
		b, err := dec.d.DecodeBytes()
		if err != nil {
			return 0, malformed("block hash: %v", err)
		}
		return xxhash.Sum64(b), nil
	case c == msgpcode.Uint64:
		v, err := dec.d.DecodeUint64()
		if err != nil {
			return 0, malformed("block hash: %v", err)
		}
		return v, nil
	}
	v, err := dec.d.DecodeInt64()
	if err != nil {
		return 0, malformed("block hash is msgpack type 0x%02x, want an integer or bytes", c)
	}
	return uint64(v), nil
}

func (dec *Decoder) hashes(dst []uint64) ([]uint64, error) {
	n, err := dec.d.DecodeArrayLen()
	if err != nil {
		return dst, malformed("block_hashes: %v", err)
	}
	if err := dec.length(n, maxHashes, "block_hashes"); err != nil {
		return dst, err
	}
	for range max(n, 0) {
		h, err := dec.hash()
		if err != nil {
			return dst, err
		}
		dst = append(dst, h)
	}
	return dst, nil
}

func (dec *Decoder) tokens(dst []uint32) ([]uint32, error) {
	n, err := dec.d.DecodeArrayLen()
	if err != nil {
		return dst, malformed("token_ids: %v", err)
	}
	if err := dec.length(n, maxTokens, "token_ids"); err != nil {
		return dst, err
	}
	for range max(n, 0) {
		v, err := dec.d.DecodeInt64()
		if err != nil {
			return dst, malformed("token id: %v", err)
		}
		if v < 0 || v > math.MaxUint32 {
			return dst, malformed("token id %d out of range", v)
		}
		dst = append(dst, uint32(v))
	}
	return dst, nil
}

// skip skips one value, refusing nesting deeper than maxDepth.
func (dec *Decoder) skip() error {
	return dec.skipDepth(0)
}

func (dec *Decoder) skipDepth(depth int) error {
	if depth > maxDepth {
		return malformed("nesting deeper than %d", maxDepth)
	}
	c, err := dec.d.PeekCode()
	if err != nil {
		return malformed("truncated value")
	}
	switch {
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, _ := dec.d.DecodeArrayLen()
		if err := dec.length(n, maxTokens, "array"); err != nil {
			return err
		}
		for range max(n, 0) {
			if err := dec.skipDepth(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, _ := dec.d.DecodeMapLen()
		if err := dec.length(n, maxTokens, "map"); err != nil {
			return err
		}
		for range 2 * max(n, 0) {
			if err := dec.skipDepth(depth + 1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := dec.d.Skip(); err != nil {
		return malformed("value: %v", err)
	}
	return nil
}

func (dec *Decoder) skipN(n int) error {
	for range max(n, 0) {
		if err := dec.skip(); err != nil {
			return err
		}
	}
	return nil
}
