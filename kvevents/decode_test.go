package kvevents

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// readHex reads a testdata payload written as hex with # comments.
func readHex(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var digits strings.Builder
	for line := range strings.SplitSeq(string(raw), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

func TestDecodeRecorded(t *testing.T) {
	sum := func(h string) uint64 { b, _ := hex.DecodeString(h); return xxhash.Sum64(b) }
	cases := []struct {
		file string
		want Batch
	}{
		{"stored_array.hex", Batch{TS: 1733529600.25, DPRank: 0, Events: []Event{{
			Kind: BlockStored, BlockHashes: []uint64{1<<63 + 1, 0xffffffffffffff02},
			TokenIDs: []uint32{1, 2, 3, 4, 500, 501, 120000, 0}, BlockSize: 4, Medium: "GPU",
		}}}},
		{"stored_legacy.hex", Batch{TS: 1733529600.25, DPRank: -1, Events: []Event{{
			Kind: BlockStored, BlockHashes: []uint64{42}, Parent: 7, HasParent: true,
			TokenIDs: []uint32{10, 11, 12, 13}, BlockSize: 4, LoRAID: 3, HasLoRAID: true,
		}}}},
		{"removed_cleared_array.hex", Batch{TS: 1733529600.25, DPRank: 2, Events: []Event{
			{Kind: BlockRemoved, BlockHashes: []uint64{1<<63 + 1, ^uint64(0)}, Medium: "GPU"},
			{Kind: AllBlocksCleared},
		}}},
		{"map_form.hex", Batch{TS: 1733529600.25, DPRank: 1, Events: []Event{
			{Kind: BlockStored, BlockHashes: []uint64{1024}, Parent: 1<<63 + 1, HasParent: true,
				TokenIDs: []uint32{5, 6, 7, 8}, BlockSize: 4, Medium: "GPU", LoRAName: "adapt1"},
			{Kind: BlockRemoved, BlockHashes: []uint64{1024}, Medium: "CPU"},
			{Kind: AllBlocksCleared},
		}}},
		{"bytes_hashes.hex", Batch{TS: 1733529600.25, DPRank: -1, Events: []Event{{
			Kind: BlockStored, BlockHashes: []uint64{sum("deadbeef")}, Parent: sum("cafef00d"), HasParent: true,
			TokenIDs: []uint32{1, 2}, BlockSize: 2, Medium: "GPU",
		}}}},
	}
	dec := NewDecoder()
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			got, err := dec.Decode(readHex(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			norm := func(b Batch) Batch {
				for i := range b.Events {
					e := &b.Events[i]
					if len(e.BlockHashes) == 0 {
						e.BlockHashes = nil
					}
					if len(e.TokenIDs) == 0 {
						e.TokenIDs = nil
					}
				}
				return b
			}
			if g := norm(*got); !reflect.DeepEqual(g, c.want) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", g, c.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := []struct{ file, msg string }{
		{"bad_tokens.hex", "3 token ids for 1 blocks of 4"},
		{"bad_tag.hex", `unknown event tag "Nope"`},
		{"bad_truncated.hex", "malformed"},
		{"bad_huge.hex", "claims 4294967295 elements"},
	}
	dec := NewDecoder()
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			_, err := dec.Decode(readHex(t, c.file))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v, want ErrMalformed with %q", err, c.msg)
			}
		})
	}
}

// FuzzDecode checks that no payload panics, hangs or yields a BlockStored
// whose tokens do not cover its blocks. The seed corpus is the recorded
// payloads under testdata.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.hex")
	for _, name := range files {
		f.Add(readHex(f, filepath.Base(name)))
	}
	dec := NewDecoder()
	f.Fuzz(func(t *testing.T, payload []byte) {
		b, err := dec.Decode(payload)
		if err != nil {
			return
		}
		for _, e := range b.Events {
			if e.Kind == BlockStored && len(e.TokenIDs) != len(e.BlockHashes)*e.BlockSize {
				t.Fatalf("BlockStored with %d tokens for %d blocks of %d", len(e.TokenIDs), len(e.BlockHashes), e.BlockSize)
			}
		}
	})
}
