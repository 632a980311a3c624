package config

import (
	"strconv"
	"strings"
)

// Pos is where a value was written: 1-based line and column.
type Pos struct {
	Line, Column int
}

// positions maps a key path (routes[1].backends[0].pool) to where its value
// was written. Parse fills it; configurations built in code have none.
type positions map[string]Pos

// lookup returns the position of path, or of its nearest ancestor that was
// written (a missing key is reported where its parent is).
func (p positions) lookup(path string) Pos {
	for {
		if pos, ok := p[path]; ok {
			return pos
		}
		if path == "" {
			return Pos{}
		}
		path = parentPath(path)
	}
}

// parentPath strips the last ".key" or "[i]" from path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// childPath joins a key onto a path.
func childPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// indexPath appends a list index to a path.
func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// within reports whether path is p itself or lies under it.
func within(path, p string) bool {
	if !strings.HasPrefix(path, p) {
		return false
	}
	if len(path) == len(p) || p == "" {
		return true
	}
	c := path[len(p)]
	return c == '.' || c == '['
}

// Position returns where path (like "routes[1].backends[0].pool") was written
// in the source, or where its nearest written ancestor was. It returns zeros
// for configurations built in code. Safe for concurrent use.
func (c *Config) Position(path string) Pos {
	return c.pos.lookup(path)
}

// ErrorAt builds an Error for path with the file and position recorded by
// Parse, so that problems found later (a certFile that does not exist) are
// reported the same way as validation errors.
func (c *Config) ErrorAt(path, msg string) Error {
	p := c.pos.lookup(path)
	return Error{File: c.Source, Line: p.Line, Column: p.Column, Path: path, Msg: msg}
}
