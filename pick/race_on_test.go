//go:build race

package pick

// raceEnabled: under -race sync.Pool drops what is put back at random and
// some values escape, so allocation counts are not checked.
const raceEnabled = true
