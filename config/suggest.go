package config

import (
	"fmt"
	"strings"
)

// editDistance counts the single-character insertions, deletions,
// substitutions and swaps of neighbours that turn a into b (optimal string
// alignment distance), ignoring case: "plian" is one step from "plain" and
// "CertFile" none from "certFile".
func editDistance(a, b string) int {
	ra, rb := []rune(strings.ToLower(a)), []rune(strings.ToLower(b))
	rows := [3][]int{make([]int, len(rb)+1), make([]int, len(rb)+1), make([]int, len(rb)+1)}
	for j := range rows[1] {
		rows[1][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		pp, prev, cur := rows[0], rows[1], rows[2]
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], pp[j-2]+1)
			}
		}
		rows[0], rows[1], rows[2] = prev, cur, pp
	}
	return rows[1][len(rb)]
}

// suggest returns the candidate closest to got, or "" when none is close
// enough to be a likely typo: at most a third of the word's length away
// (at least 1, at most 3 edits), or else the only candidate it begins (of
// three letters or more). Ties go to the earlier candidate.
func suggest(got string, candidates []string) string {
	if len(got) > 64 {
		return ""
	}
	limit := min(max(1, len([]rune(got))/3), 3)
	best, bestD := "", limit+1
	for _, c := range candidates {
		if d := editDistance(got, c); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" && len(got) >= 3 {
		for _, c := range candidates {
			if strings.HasPrefix(strings.ToLower(c), strings.ToLower(got)) {
				if best != "" {
					return "" // ambiguous
				}
				best = c
			}
		}
	}
	return best
}

// Suggest returns the candidate that got most likely misspells, or "" when
// none is close: the rule config keys and values use for "did you mean",
// shared so that the command line suggests flags and commands the same way.
func Suggest(got string, candidates []string) string { return suggest(got, candidates) }

// oneOfMsg is the message for a value outside an enumeration: it names the
// closest allowed value when there is one, and all of them otherwise.
func oneOfMsg(what, got string, allowed []string) string {
	if s := suggest(got, allowed); s != "" {
		return fmt.Sprintf("unknown %s %q; did you mean %q?", what, got, s)
	}
	return fmt.Sprintf("unknown %s %q; use one of %s", what, got, strings.Join(allowed, ", "))
}
