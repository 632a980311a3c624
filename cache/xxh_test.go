package cache

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func refChainHash(prev uint64, block []byte) uint64 {
	in := binary.LittleEndian.AppendUint64(nil, prev)
	return xxhash.Sum64(append(in, block...))
}

// chainHash must be XXH64 of the concatenation, bit for bit, at every length
// (each stripe, lane and byte tail path) so that hashes never change.
func TestChainHashIsXXH64(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	buf := make([]byte, 300)
	for n := 0; n <= len(buf); n++ {
		for range 8 {
			for i := range buf[:n] {
				buf[i] = byte(r.Uint32())
			}
			prev := r.Uint64()
			if got, want := chainHash(prev, buf[:n]), refChainHash(prev, buf[:n]); got != want {
				t.Fatalf("length %d: chainHash %x, XXH64 %x", n, got, want)
			}
		}
	}
}

func FuzzChainHash(f *testing.F) {
	f.Add(uint64(0), []byte(""))
	f.Add(uint64(1), []byte("You are a helpful assistant; follow the policy. You are a helpful"))
	f.Fuzz(func(t *testing.T, prev uint64, block []byte) {
		if got, want := chainHash(prev, block), refChainHash(prev, block); got != want {
			t.Fatalf("chainHash(%x, %q) = %x, XXH64 %x", prev, block, got, want)
		}
	})
}
