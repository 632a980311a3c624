//go:build race

package router

// raceEnabled: the race detector (and checkptr) makes some values escape, so
// allocation counts are not checked under -race.
const raceEnabled = true
