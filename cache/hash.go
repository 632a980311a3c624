package cache

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// Seed starts a block-hash chain for one model and cache salt. Different
// (model, salt) pairs give unrelated chains, so prompts of different models,
// or with different salts, never share a block hash. Lengths are hashed too,
// so ("ab", "c") and ("a", "bc") differ.
func Seed(model, salt string) uint64 {
	var d xxhash.Digest
	d.Reset()
	var n [8]byte
	_, _ = d.WriteString("kvgate/cache/v1")
	binary.LittleEndian.PutUint64(n[:], uint64(len(model)))
	_, _ = d.Write(n[:])
	_, _ = d.WriteString(model)
	binary.LittleEndian.PutUint64(n[:], uint64(len(salt)))
	_, _ = d.Write(n[:])
	_, _ = d.WriteString(salt)
	return d.Sum64()
}

// Blocks appends to dst[:0] the chained hashes of text's full blocks and
// returns it: hash(i) = xxhash64(le64(hash(i-1)) || block i), hash(-1) = seed.
// The last partial block is not hashed, as vLLM caches only full blocks, so
// len(result) == len(text)/blockSize. blockSize is the pool's configured
// inference.blockSize and must be > 0; a smaller one hashes nothing (the
// result is empty, so the prompt matches and records no block).
//
// Because each hash covers the whole prefix before it, two prompts share
// hash i exactly when (with overwhelming probability) they share the seed and
// their first (i+1)*blockSize bytes. Blocks does not allocate when dst has
// room; it is safe for concurrent use.
func Blocks(seed uint64, text []byte, blockSize int, dst []uint64) []uint64 {
	dst = dst[:0]
	if blockSize <= 0 {
		return dst
	}
	n := len(text) / blockSize
	if cap(dst) < n {
		dst = make([]uint64, 0, n)
	}
	h := seed
	for i := 0; i < n; i++ {
		h = chainHash(h, text[i*blockSize:(i+1)*blockSize])
		dst = append(dst, h)
	}
	return dst
}

// PlacementDepth is how many leading blocks the picker's placement keys
// cover (package pick passes it to PlacementKey): 64 blocks, with 64-byte
// blocks the first 4 KiB of the prompt (about 1k tokens). It is a property
// of the placement rule, not a setting.
//
// Why this depth: real traces put one system prompt in front of thousands of
// conversations, so a key made of the first block alone sends all of them to
// one endpoint and leaves the load bound to undo the damage. 4 KiB is past
// most shared system prompts and tool lists, so distinct conversations get
// distinct keys and spread, while all turns of one conversation whose shared
// part already exceeds 4 KiB keep one key. Shorter prompts use their last
// full block, i.e. their whole hashed prefix.
const PlacementDepth = 64

// PlacementKey returns the key that consistent placement (Place) uses for a
// prompt whose leading block no endpoint holds: the chained hash at depth
// min(len(blocks), depth), which covers the whole prefix up to that depth.
// depth must be >= 1 (the picker passes PlacementDepth or more); a smaller
// one is raised to 1, the first block. A prompt with no full block uses
// seed, so short prompts of one model and salt share an endpoint until the
// load bound moves them.
//
// Passing depth = matched+1, where matched is the longest leading match the
// index reported, keys on the first block no endpoint has seen instead; that
// choice depends on the local index and so agrees less across replicas.
func PlacementKey(seed uint64, blocks []uint64, depth int) uint64 {
	if len(blocks) == 0 {
		return seed
	}
	depth = max(depth, 1)
	if depth > len(blocks) {
		depth = len(blocks)
	}
	return blocks[depth-1]
}

// CharsPerToken is the bytes of prompt text kvgate counts as one token
// wherever it estimates tokens without a tokenizer: prompt sizes, index
// capacity from a server's KV cache size, and text blocks from tokens.
const CharsPerToken = 4

// TokensOf estimates the tokens in n bytes of prompt text (CharsPerToken
// bytes a token, rounded up).
func TokensOf(n int) int { return (n + CharsPerToken - 1) / CharsPerToken }

// CapacityFromServer converts a model server's KV cache size into index
// capacity in our blocks: numGPUBlocks blocks of serverBlockTokens tokens
// each, at CharsPerToken bytes per token, divided into blocks of blockSize bytes.
// With vLLM's 16-token blocks and 64-byte index blocks one server block is
// one index block. Non-positive inputs (blockSize included) give 0, which
// SetCapacity reads as "the index's own capacity".
func CapacityFromServer(numGPUBlocks, serverBlockTokens, blockSize int) int {
	if numGPUBlocks <= 0 || serverBlockTokens <= 0 || blockSize <= 0 {
		return 0
	}
	return int(int64(numGPUBlocks) * int64(serverBlockTokens) * CharsPerToken / int64(blockSize))
}
