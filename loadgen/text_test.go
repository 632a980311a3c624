package loadgen

import (
	"strings"
	"testing"
)

func TestBlockText(t *testing.T) {
	seen := map[string]uint64{}
	for id := range uint64(200) {
		a, b := BlockText(id), BlockText(id)
		if a != b {
			t.Fatalf("id %d: two calls differ", id)
		}
		if len(a) != BlockChars {
			t.Fatalf("id %d: len %d, want %d", id, len(a), BlockChars)
		}
		// Distinct ids must differ in every 64-byte cache block, not only
		// somewhere, or a simulator would see shared prefixes that the
		// trace does not have.
		if prev, ok := seen[a[:64]]; ok {
			t.Fatalf("ids %d and %d share their first 64 bytes", prev, id)
		}
		seen[a[:64]] = id
	}
	big := BlockText(1<<64 - 1)
	if len(big) != BlockChars || !strings.HasPrefix(big, "[18446744073709551615]") {
		t.Fatalf("largest id: %q...", big[:40])
	}
}

func TestPromptText(t *testing.T) {
	ids := []uint64{7, 8, 9}
	for _, tc := range []struct {
		tokens, want int
	}{
		{0, 0}, {-3, 0}, {1, 4}, {512, BlockChars}, {513, BlockChars + 4}, {1100, 4400},
		{3 * 512, 3 * BlockChars}, {5000, 3 * BlockChars}, // ids cover only 1536 tokens
	} {
		if got := len(PromptText(ids, tc.tokens)); got != tc.want {
			t.Errorf("PromptText(%d tokens): len %d, want %d", tc.tokens, got, tc.want)
		}
	}
	full := PromptText(ids, 1536)
	if full != BlockText(7)+BlockText(8)+BlockText(9) {
		t.Fatal("PromptText is not the concatenation of its blocks")
	}
	// A shorter prompt over the same ids is a prefix of a longer one, and a
	// prompt that shares leading ids shares exactly that much text.
	if !strings.HasPrefix(full, PromptText(ids, 700)) {
		t.Fatal("shorter prompt is not a prefix of the longer one")
	}
	other := PromptText([]uint64{7, 8, 10}, 1536)
	if other[:2*BlockChars] != full[:2*BlockChars] || other[2*BlockChars:2*BlockChars+64] == full[2*BlockChars:2*BlockChars+64] {
		t.Fatal("prompts sharing two ids must share exactly two blocks")
	}
}

func TestSynthetic(t *testing.T) {
	reqs := Synthetic(SyntheticSpec{Conversations: 3, Turns: 4, SystemBlocks: 2, TurnBlocks: 1, Stagger: 100, Think: 1e9, Output: 8})
	if len(reqs) != 12 {
		t.Fatalf("got %d requests, want 12", len(reqs))
	}
	byFirst := map[uint64][]Request{}
	for i, r := range reqs {
		if i > 0 && r.Timestamp < reqs[i-1].Timestamp {
			t.Fatal("not sorted by arrival")
		}
		if r.HashIDs[0] != 0 || r.HashIDs[1] != 1 {
			t.Fatalf("request %d does not start with the system prompt: %v", i, r.HashIDs)
		}
		if need := (r.InputLength + TraceBlockTokens - 1) / TraceBlockTokens; need != len(r.HashIDs) {
			t.Fatalf("request %d: %d tokens need %d ids, has %d", i, r.InputLength, need, len(r.HashIDs))
		}
		byFirst[r.HashIDs[2]] = append(byFirst[r.HashIDs[2]], r)
	}
	if len(byFirst) != 3 {
		t.Fatalf("got %d conversations, want 3", len(byFirst))
	}
	for _, conv := range byFirst {
		for i := 1; i < len(conv); i++ {
			prev, cur := PromptText(conv[i-1].HashIDs, conv[i-1].InputLength), PromptText(conv[i].HashIDs, conv[i].InputLength)
			if !strings.HasPrefix(cur, prev) || len(cur) <= len(prev) {
				t.Fatal("a turn does not extend the previous one")
			}
		}
	}
	if got := Synthetic(SyntheticSpec{}); len(got) != 1 || len(got[0].HashIDs) != 1 {
		t.Fatalf("zero spec: %+v", got)
	}
}

func BenchmarkPromptText(b *testing.B) {
	ids := make([]uint64, 28)
	for i := range ids {
		ids[i] = uint64(i * 7919)
	}
	b.ReportAllocs()
	b.SetBytes(14000 * CharsPerToken)
	for b.Loop() {
		_ = PromptText(ids, 14000)
	}
}
