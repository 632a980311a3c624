package config

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// nodeBudget bounds the nodes one Parse visits, aliases expanded, so that a
// small file of nested aliases cannot make decoding take unbounded time. Real
// configurations hold a few thousand values at most.
const nodeBudget = 1 << 17

// decoder walks a yaml.Node tree alongside the Go types, so that every value
// has a line and every problem is reported (not just the first).
type decoder struct {
	file string
	errs Errors
	pos  positions
	bad  map[string]bool // paths that failed to decode; validation stays quiet about them
	// badAbove holds every proper ancestor of a bad path (built by covers).
	badAbove map[string]bool
	budget   int
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, pos: positions{}, bad: map[string]bool{}, budget: nodeBudget}
}

// fail records a problem at node n for path and marks path as failed.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.bad[path] = true
	d.errs = append(d.errs, Error{File: d.file, Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

var durationType = reflect.TypeFor[Duration]()

// decode stores node n into v, the value at path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.budget--; d.budget < 0 {
		if d.budget == -1 {
			d.fail(n, path, "the document is too large or expands too many aliases (more than %d values); split it or write values out", nodeBudget)
		}
		return
	}
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	d.pos[path] = Pos{Line: n.Line, Column: n.Column}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // absent: leave the zero value for Default to fill
	}
	if v.Type() == durationType {
		d.duration(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(n, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.fail(n, path, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		d.integer(n, v, path)
	case reflect.Float64:
		d.float(n, v, path)
	default:
		d.fail(n, path, "config: cannot decode into %s (a kvgate bug; please report it)", v.Type())
	}
}

func (d *decoder) integer(n *yaml.Node, v reflect.Value, path string) {
	var i int64
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
		hint := ""
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" && (&yaml.Node{Kind: yaml.ScalarNode, Value: n.Value}).ShortTag() == "!!int" {
			hint = "; remove the quotes"
		}
		d.fail(n, path, "expected a whole number, got %s%s", describe(n), hint)
		return
	}
	if v.OverflowInt(i) {
		d.fail(n, path, "%s is too large", n.Value)
		return
	}
	v.SetInt(i)
}

func (d *decoder) float(n *yaml.Node, v reflect.Value, path string) {
	var f float64
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode || (tag != "!!float" && tag != "!!int") || n.Decode(&f) != nil {
		d.fail(n, path, "expected a number, got %s", describe(n))
		return
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		d.fail(n, path, "expected a finite number, got %s", n.Value)
		return
	}
	v.SetFloat(f)
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected a duration like 30s, got %s", describe(n))
		return
	}
	s := strings.TrimSpace(n.Value)
	if s == "0" {
		v.SetInt(0)
		return
	}
	t, err := time.ParseDuration(s)
	switch {
	case err != nil && n.ShortTag() == "!!int":
		d.fail(n, path, "%s has no unit: write %ss or %sms", s, s, s)
	case err != nil:
		d.fail(n, path, "%q is not a duration: write it like 30s, 250ms or 1h30m", truncate(n.Value))
	case t < 0:
		d.fail(n, path, "%s is negative: write 0 or a positive duration like 30s", s)
	default:
		v.SetInt(int64(t))
	}
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		hint := ""
		switch n.Kind {
		case yaml.ScalarNode:
			hint = fmt.Sprintf("; write [%s] for a list of one", truncate(n.Value))
		case yaml.MappingNode:
			hint = "; start the item with \"- \" to make it a list of one"
		}
		d.fail(n, path, "expected a list, got %s%s", describe(n), hint)
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, s.Index(i), indexPath(path, i))
	}
	v.Set(s)
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	fs := fieldsOf(v.Type())
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping with keys like %s, got %s", strings.Join(fs.names[:min(3, len(fs.names))], ", "), describe(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "keys must be plain names, got %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			d.fail(k, childPath(path, k.Value), "merge keys (<<) are not supported; write the keys out or alias the whole value")
			continue
		}
		kp := childPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.fail(k, kp, "key %q is repeated (first at line %d); keep one", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		idx, ok := fs.index[k.Value]
		if !ok {
			d.unknown(k, path, fs.names)
			continue
		}
		d.decode(val, v.Field(idx), kp)
	}
}

// unknown reports a key that the struct at path does not have.
func (d *decoder) unknown(k *yaml.Node, path string, known []string) {
	kp := childPath(path, k.Value)
	if s := suggest(k.Value, known); s != "" {
		d.fail(k, kp, "unknown key %q; did you mean %q?", truncate(k.Value), s)
		d.bad[childPath(path, s)] = true // a missing value there is the same mistake
		return
	}
	where := "here"
	if path != "" {
		where = "in " + path
	}
	d.fail(k, kp, "unknown key %q; the keys allowed %s are %s", truncate(k.Value), where, strings.Join(known, ", "))
}

// fieldTable is a struct's yaml keys, in declaration order, and their field indexes.
type fieldTable struct {
	names []string
	index map[string]int
}

var fieldCache sync.Map // reflect.Type → *fieldTable

// fieldsOf returns the yaml keys of struct type t (fields tagged "-" and
// unexported fields are not keys).
func fieldsOf(t reflect.Type) *fieldTable {
	if ft, ok := fieldCache.Load(t); ok {
		return ft.(*fieldTable)
	}
	ft := &fieldTable{index: map[string]int{}}
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" {
			continue
		}
		ft.names = append(ft.names, name)
		ft.index[name] = i
	}
	fieldCache.Store(t, ft)
	return ft
}

// yamlName is the key of field f, or "" when f is not a key.
func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return strings.ToLower(f.Name)
	}
	return name
}

// describe names what a node holds, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", truncate(n.Value))
		case "!!int", "!!float":
			return "the number " + truncate(n.Value)
		case "!!bool":
			return n.Value
		case "!!null":
			return "nothing"
		}
		return fmt.Sprintf("%q", truncate(n.Value))
	}
	return "nothing"
}

// truncate shortens long values quoted in messages.
func truncate(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:37]) + "..."
	}
	return s
}
