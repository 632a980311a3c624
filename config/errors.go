package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Error is one problem found in a configuration.
type Error struct {
	// File names the source ("" when unknown, e.g. a configuration built in code).
	File string
	// Line and Column are 1-based; 0 means unknown.
	Line, Column int
	// Path is the key path, like routes[1].backends[0].pool; "" for the whole file.
	Path string
	// Msg says what is wrong and what to do about it.
	Msg string
	// Err is the underlying cause when there is one (a read error), else nil.
	Err error
}

// Error formats the problem as "file:line:col: path: msg", leaving out the
// parts that are unknown.
func (e Error) Error() string {
	var b strings.Builder
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
		if e.Column > 0 {
			loc += ":" + strconv.Itoa(e.Column)
		}
	}
	if loc != "" {
		b.WriteString(loc)
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying cause, if any.
func (e Error) Unwrap() error { return e.Err }

// Errors is every problem found in one configuration (up to MaxProblems),
// ordered by position. Load, Parse and Validate return it as a *Errors.
type Errors []Error

// Error prints one "file:line:col: path: msg" per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is and errors.As look at each problem.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sortErrors orders problems by line and column; those without a line go
// last. Problems at the same place keep the order they were found in.
func sortErrors(es Errors) {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if (a.Line == 0) != (b.Line == 0) {
			return b.Line == 0
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

// MaxProblems bounds the problems one report lists. A hand-written file never
// comes near it; a generated or hostile one (aliases can repeat a mistake
// thousands of times) gets the first MaxProblems in file order and a last
// line saying how many more there are.
const MaxProblems = 1000

// asError returns nil for no problems and a *Errors otherwise, so that callers
// never see a typed nil inside an error interface.
func asError(es Errors) error {
	if len(es) == 0 {
		return nil
	}
	sortErrors(es)
	if n := len(es) - MaxProblems; n > 0 {
		es = append(es[:MaxProblems:MaxProblems], Error{File: es[0].File,
			Msg: fmt.Sprintf("%d more problems not shown; fix these first", n)})
	}
	return &es
}
