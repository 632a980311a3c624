package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// DefaultYAML is the configuration `kvgate run` serves when given no file: a
// plaintext listener on 127.0.0.1:8080 forwarding everything to 127.0.0.1:8000.
// It is byte for byte examples/quickstart.yaml (a test keeps them equal).
//
//go:embed default.yaml
var DefaultYAML []byte

// Load reads, strictly decodes, defaults and validates one file. On failure
// the error is a *Errors listing every problem found, each with file:line,
// key path and what to do.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Errors{{File: path, Msg: fmt.Sprintf("config: cannot read the file: %v; check the path and permissions", err), Err: err}}
	}
	return Parse(data, path)
}

// Parse does the same as Load for bytes; source names the file in messages
// and becomes Config.Source. It never opens files named in the configuration.
func Parse(data []byte, source string) (*Config, error) {
	d := newDecoder(source)
	c := &Config{Source: source}
	if root := d.document(data); root != nil {
		d.decode(root, reflect.ValueOf(c).Elem(), "")
	}
	c.pos = d.pos
	Default(c)
	errs := d.errs
	if len(errs) > 0 && len(d.pos) == 0 {
		return nil, asError(errs) // nothing decoded: validation would only repeat it
	}
	for _, e := range validate(c, d.bad) {
		if !d.covers(e.Path) {
			errs = append(errs, e)
		}
	}
	if err := asError(errs); err != nil {
		return nil, err
	}
	return c, nil
}

// covers reports whether a validation problem at path follows from a decoding
// problem already reported at path, under it or above it. It costs one map
// lookup per level of path, so that files with many problems stay linear.
func (d *decoder) covers(path string) bool {
	if d.badAbove == nil {
		d.badAbove = map[string]bool{}
		for p := range d.bad {
			for q := parentPath(p); q != "" && !d.badAbove[q]; q = parentPath(q) {
				d.badAbove[q] = true
			}
		}
	}
	if d.badAbove[path] {
		return true
	}
	for p := path; ; p = parentPath(p) {
		if d.bad[p] {
			return true
		}
		if p == "" {
			return false
		}
	}
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses data into the root node of its only YAML document. It
// returns nil, with the problem recorded, when there is nothing to decode.
func (d *decoder) document(data []byte) (root *yaml.Node) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := safeDecode(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.errs = append(d.errs, Error{File: d.file, Msg: "the file holds no configuration; start from examples/quickstart.yaml"})
		} else {
			d.syntax(data, err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := safeDecode(dec, &extra); {
	case err == nil:
		d.errs = append(d.errs, Error{File: d.file, Line: extra.Line, Column: extra.Column,
			Msg: "a second YAML document starts here; kvgate reads one document per file: remove the \"---\" and what follows, or split the file"})
	case !errors.Is(err, io.EOF):
		d.syntax(data, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].ShortTag() == "!!null" {
		d.errs = append(d.errs, Error{File: d.file, Line: doc.Line, Msg: "the file holds no configuration; start from examples/quickstart.yaml"})
		return nil
	}
	return doc.Content[0]
}

// syntax records a YAML syntax error, with its line when the parser gave one.
func (d *decoder) syntax(data []byte, err error) {
	e := Error{File: d.file, Msg: err.Error()}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Line = firstFailingLine(data, m[2], e.Line)
		e.Msg = "yaml: " + m[2] + "; check the indentation and quoting on this line and the one before"
		if lines := bytes.Split(data, []byte("\n")); e.Line <= len(lines) && bytes.IndexByte(lines[e.Line-1], '\t') >= 0 {
			e.Msg = "yaml: " + m[2] + "; this line has a tab: YAML indents with spaces only"
		}
	}
	d.errs = append(d.errs, e)
}

// firstFailingLine finds the line of a syntax error more exactly than the
// parser reports it (which is often the start of the enclosing block): the
// first line whose prefix of the file already fails with the same message,
// found by binary search, since once the bad line is included every longer
// prefix fails the same way. It returns line when the search finds nothing.
func firstFailingLine(data []byte, msg string, line int) int {
	var ends []int // ends[k-1] is the offset just past line k
	for off := 0; off < len(data); {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			off = len(data)
		} else {
			off += i + 1
		}
		ends = append(ends, off)
	}
	fails := func(k int) bool {
		err := parseAll(data[:ends[k-1]])
		if err == nil {
			return false
		}
		m := yamlLine.FindStringSubmatch(err.Error())
		return m != nil && m[2] == msg
	}
	lo, hi := 1, len(ends)
	if hi == 0 || !fails(hi) {
		return line
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// parseAll parses every document of data and returns the first error.
func parseAll(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := safeDecode(dec, &n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// safeDecode turns a panic inside the YAML parser into an error, so that no
// input can crash a process that validates untrusted files.
func safeDecode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: the parser failed on this input (%v); check the file is YAML", r)
		}
	}()
	return dec.Decode(n)
}
