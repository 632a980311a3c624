package sim

import "encoding/json"

// This file lets a harness look at the simulator's real cache, for an
// oracle router that knows what every server holds (package loadgen's
// oracle scenario). kvgate itself never calls it: it must learn the cache
// from what it sends or from KV events.

// CachedBlocks returns how many of hashes, from the first, the prefix cache
// holds now (held by running requests or evictable). The hashes are
// BlockHashes of the text the server would see (ChatText for a chat
// request). It is safe for concurrent use.
func (s *Server) CachedBlocks(hashes []uint64) int {
	s.eng.mu.Lock()
	defer s.eng.mu.Unlock()
	n := 0
	for _, h := range hashes {
		if _, ok := s.eng.pool.entries[h]; !ok {
			break
		}
		n++
	}
	return n
}

// ChatText returns the text the chat template makes of one message, the
// text whose blocks a chat completion with that single message hashes.
func ChatText(role, content string) string {
	raw, _ := json.Marshal(content)
	text, err := chatTemplate([]chatMessage{{Role: role, Content: raw}})
	if err != nil {
		return ""
	}
	return text
}
