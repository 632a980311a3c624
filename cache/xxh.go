package cache

import (
	"encoding/binary"
	"math/bits"
)

// XXH64 (seed 0) of le64(prev) || block, computed without building that
// concatenation: the chained block hash of Blocks. It equals
// xxhash.Sum64 of the concatenation bit for bit (TestChainHashIsXXH64), so
// hashes do not change with it; it exists because the prompt's blocks are
// hashed on every request and the copy and call of the general function cost
// about a third of the hash. The algorithm is XXH64 as its specification
// describes it: four accumulators over 32-byte stripes, merged, then the
// remaining 8-, 4- and 1-byte pieces, then the avalanche. Since prev is
// exactly one 8-byte lane, block's lanes stay 8-byte aligned in the stream.
const (
	xp1 uint64 = 11400714785074694791
	xp2 uint64 = 14029467366897019727
	xp3 uint64 = 1609587929392839161
	xp4 uint64 = 9650029242287828579
	xp5 uint64 = 2870177450012600261
)

func xround(acc, lane uint64) uint64 {
	return bits.RotateLeft64(acc+lane*xp2, 31) * xp1
}

func xmerge(h, v uint64) uint64 {
	return (h^xround(0, v))*xp1 + xp4
}

func chainHash(prev uint64, block []byte) uint64 {
	n := 8 + len(block)
	var h uint64
	b := block
	if n >= 32 {
		p1 := xp1 // a variable, so that the sums below wrap
		v1 := xround(p1+xp2, prev)
		v2 := xround(xp2, binary.LittleEndian.Uint64(b[0:8]))
		v3 := xround(0, binary.LittleEndian.Uint64(b[8:16]))
		v4 := xround(-p1, binary.LittleEndian.Uint64(b[16:24]))
		for b = b[24:]; len(b) >= 32; b = b[32:] {
			v1 = xround(v1, binary.LittleEndian.Uint64(b[0:8]))
			v2 = xround(v2, binary.LittleEndian.Uint64(b[8:16]))
			v3 = xround(v3, binary.LittleEndian.Uint64(b[16:24]))
			v4 = xround(v4, binary.LittleEndian.Uint64(b[24:32]))
		}
		h = bits.RotateLeft64(v1, 1) + bits.RotateLeft64(v2, 7) +
			bits.RotateLeft64(v3, 12) + bits.RotateLeft64(v4, 18)
		h = xmerge(h, v1)
		h = xmerge(h, v2)
		h = xmerge(h, v3)
		h = xmerge(h, v4)
		h += uint64(n)
	} else {
		h = xp5 + uint64(n)
		h ^= xround(0, prev)
		h = bits.RotateLeft64(h, 27)*xp1 + xp4
	}
	for ; len(b) >= 8; b = b[8:] {
		h ^= xround(0, binary.LittleEndian.Uint64(b[:8]))
		h = bits.RotateLeft64(h, 27)*xp1 + xp4
	}
	if len(b) >= 4 {
		h ^= uint64(binary.LittleEndian.Uint32(b[:4])) * xp1
		h = bits.RotateLeft64(h, 23)*xp2 + xp3
		b = b[4:]
	}
	for _, c := range b {
		h ^= uint64(c) * xp5
		h = bits.RotateLeft64(h, 11) * xp1
	}
	h ^= h >> 33
	h *= xp2
	h ^= h >> 29
	h *= xp3
	h ^= h >> 32
	return h
}
