package loadgen

import "strconv"

// CharsPerToken matches the simulator's stand-in tokenizer.
const CharsPerToken = 4

// BlockChars is the text length of one trace block: TraceBlockTokens tokens.
const BlockChars = TraceBlockTokens * CharsPerToken

// words is the vocabulary block text is drawn from.
var words = [...]string{
	"cache", "token", "prefix", "block", "route", "model", "server", "query",
	"answer", "system", "prompt", "user", "agent", "reply", "voice", "graph",
	"stream", "batch", "queue", "score", "alpha", "beta", "gamma", "delta",
	"north", "south", "east", "west", "river", "stone", "cloud", "light",
	"a", "an", "the", "of", "to", "in", "on", "and",
	"kernel", "memory", "vector", "matrix", "tensor", "layer", "head", "weight",
	"first", "second", "third", "last", "early", "late", "quick", "slow",
	"green", "blue", "red", "amber", "silver", "golden", "plain", "bright",
}

// splitmix64 is a small, fast, well-mixed generator; state advances by a
// constant so every id seeds an independent stream.
type splitmix64 uint64

func (s *splitmix64) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// appendBlock appends the BlockChars bytes of block id to b.
func appendBlock(b []byte, id uint64) []byte {
	start := len(b)
	// The id is written first so that two ids never give the same block,
	// whatever the generator does.
	b = append(b, '[')
	b = strconv.AppendUint(b, id, 10)
	b = append(b, ']')
	s := splitmix64(id)
	for len(b)-start < BlockChars {
		b = append(b, ' ')
		b = append(b, words[s.next()%uint64(len(words))]...)
	}
	return b[:start+BlockChars] // cut the last word
}

// BlockText returns the deterministic BlockChars-byte text of block id.
func BlockText(id uint64) string {
	return string(appendBlock(make([]byte, 0, BlockChars+16), id))
}

// PromptText returns exactly tokens×CharsPerToken bytes: the blocks of ids in
// order, the last one cut short. If the ids cover fewer tokens, the text is
// as long as they are. tokens <= 0 gives "".
func PromptText(ids []uint64, tokens int) string {
	n := tokens * CharsPerToken
	if n <= 0 {
		return ""
	}
	b := make([]byte, 0, min(n, len(ids)*BlockChars)+BlockChars)
	for _, id := range ids {
		if len(b) >= n {
			break
		}
		b = appendBlock(b, id)
	}
	return string(b[:min(n, len(b))])
}
