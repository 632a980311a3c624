package adapt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// doc is one Kubernetes object read from a manifest file.
type doc struct {
	res        Resource
	apiVersion string
	node       *yaml.Node // the object's mapping
	// obj, when node is nil, is the decoded object, of a kind read without
	// a node (direct.go).
	obj map[string]any
}

// maxListDepth bounds List items nested in Lists; maxObjects bounds the
// objects (and Lists) one input may hold, so that Lists whose items are
// aliases of Lists cannot multiply without end.
const (
	maxListDepth = 8
	maxObjects   = 10000
)

// decodeDocs splits a multi-document manifest into objects, unwrapping
// `kind: List`. Documents that are empty are skipped; documents that are not
// Kubernetes objects are reported as warnings. Syntax errors are errors.
func decodeDocs(data []byte, file string) ([]doc, []Warning, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []doc
	var warns []Warning
	for {
		var n yaml.Node
		err := safeDecode(dec, &n)
		if errors.Is(err, io.EOF) {
			return docs, warns, nil
		}
		if err != nil {
			return nil, nil, &Error{Resource: Resource{File: file}, Msg: fmt.Sprintf("cannot parse the YAML: %v; check indentation and quoting", err), Err: err}
		}
		if len(n.Content) == 0 {
			continue
		}
		root := resolve(n.Content[0])
		if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
			continue
		}
		budget := maxObjects - len(docs)
		docs, warns = collect(root, file, docs, warns, 0, &budget)
		if budget < 0 {
			return nil, nil, &Error{Resource: Resource{File: file}, Msg: fmt.Sprintf("more than %d objects (or Lists built from aliases); split the input", maxObjects)}
		}
	}
}

// namespaceOrDefault is the namespace of an object whose metadata.namespace
// is ns: "default" when unset, as kubectl applies it. Both ways of reading an
// object (collect from YAML, directDoc from decoded maps) use it.
func namespaceOrDefault(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}

// collect appends the object at n, or the items of a List, to docs.
func collect(n *yaml.Node, file string, docs []doc, warns []Warning, depth int, budget *int) ([]doc, []Warning) {
	if *budget--; *budget < 0 {
		return docs, warns
	}
	d := doc{res: Resource{File: file, Line: n.Line}}
	if n.Kind != yaml.MappingNode {
		warns = append(warns, Warning{Resource: d.res, Msg: "this document is not a Kubernetes object (not a mapping); ignored"})
		return docs, warns
	}
	d.apiVersion = scalar(n, "apiVersion")
	d.res.Kind = scalar(n, "kind")
	if md := lookup(n, "metadata"); md != nil {
		d.res.Name = scalar(md, "name")
		d.res.Namespace = scalar(md, "namespace")
	}
	d.res.Namespace = namespaceOrDefault(d.res.Namespace)
	d.node = n
	switch {
	case d.apiVersion == "" || d.res.Kind == "":
		warns = append(warns, Warning{Resource: d.res, Msg: "this document has no apiVersion or kind, so it is not a Kubernetes object; ignored"})
	case d.res.Kind == "List" || strings.HasSuffix(d.res.Kind, "List") && lookup(n, "items") != nil:
		items := lookup(n, "items")
		if depth >= maxListDepth || items == nil || items.Kind != yaml.SequenceNode {
			warns = append(warns, Warning{Resource: d.res, Field: "items", Msg: "expected a list of objects (at most 8 Lists deep); ignored"})
			break
		}
		for _, it := range items.Content {
			docs, warns = collect(resolve(it), file, docs, warns, depth+1, budget)
			if *budget < 0 {
				break
			}
		}
	case d.res.Name == "":
		warns = append(warns, Warning{Resource: d.res, Field: "metadata.name", Msg: "an object needs a name; ignored"})
	default:
		docs = append(docs, d)
	}
	return docs, warns
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// lookup returns the value of key in mapping n, or nil.
func lookup(n *yaml.Node, key string) *yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return resolve(n.Content[i+1])
		}
	}
	return nil
}

// scalar returns the scalar value of key in mapping n, or "".
func scalar(n *yaml.Node, key string) string {
	if v := lookup(n, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

// fieldAt is a key path inside an object and the line of that key.
type fieldAt struct {
	path string
	line int
}

// decodeInto decodes d into out (a pointer to one of the *Doc types) and
// returns the keys that out does not understand.
func decodeInto(d doc, out any) (unknown []fieldAt, err error) {
	if err := safeNodeDecode(d.node, out); err != nil {
		return nil, &Error{Resource: d.res, Msg: fmt.Sprintf("cannot decode: %v; check the field types against the %s %s schema", trimYAMLErr(err), d.apiVersion, d.res.Kind), Err: err}
	}
	budget := maxWalk
	unknownFields(d.node, reflect.TypeOf(out).Elem(), "", &unknown, &budget)
	return unknown, nil
}

func trimYAMLErr(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "yaml: unmarshal errors:\n  ")
	return strings.ReplaceAll(s, "\n  ", "; ")
}

// maxWalk bounds the nodes unknownFields visits in one document, so that
// alias-heavy input stays linear.
const maxWalk = 1 << 16

var (
	nodeType    = reflect.TypeOf(yaml.Node{})
	skippedType = reflect.TypeOf(skipped{})
)

// unknownFields appends to out the path and line of every mapping key under
// n that type t has no field for. It stops at yaml.Node, maps and scalars.
func unknownFields(n *yaml.Node, t reflect.Type, path string, out *[]fieldAt, budget *int) {
	n = resolve(n)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n == nil || *budget <= 0 || t == nodeType || t == skippedType {
		return
	}
	*budget--
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		fields := fieldsOf(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			p := joinKey(path, key) // the direct reader (where.in) spells paths the same way
			ft, ok := fields[key]
			switch {
			case !ok:
				*out = append(*out, fieldAt{p, n.Content[i].Line})
			case ft == reflect.TypeOf(meta{}):
			default:
				unknownFields(n.Content[i+1], ft, p, out, budget)
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, it := range n.Content {
			unknownFields(it, t.Elem(), path+"["+strconv.Itoa(i)+"]", out, budget)
		}
	}
}

var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// fieldsOf maps the YAML keys of struct t (inline structs flattened) to types.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opts == "inline" {
			for k, v := range fieldsOf(f.Type) {
				m[k] = v
			}
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		m[name] = f.Type
	}
	fieldCache.Store(t, m)
	return m
}

// safeDecode and safeNodeDecode turn a panic inside the YAML library into an
// error, so that no input can crash the process.
func safeDecode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the YAML parser failed on this input (%v)", r)
		}
	}()
	return dec.Decode(n)
}

func safeNodeDecode(n *yaml.Node, out any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the YAML decoder failed on this input (%v)", r)
		}
	}()
	return n.Decode(out)
}

// IsManifest reports whether data holds Kubernetes manifests rather than a
// native kvgate configuration: some document is a mapping with both an
// apiVersion and a kind key. Unparseable input is not a manifest (the native
// loader then reports the syntax error with its line).
func IsManifest(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for range 1000 {
		var n yaml.Node
		if err := safeDecode(dec, &n); err != nil {
			return false
		}
		if len(n.Content) > 0 {
			root := resolve(n.Content[0])
			if lookup(root, "apiVersion") != nil && lookup(root, "kind") != nil {
				return true
			}
		}
	}
	return false
}

// objectNode builds the YAML node of a decoded object (JSON's types, as
// client-go's unstructured objects hold them: maps, lists, strings, int64,
// float64, bool, nil), keys sorted. It is what (*yaml.Node).Encode would
// give, without printing YAML and parsing it again, which costs ten times
// more on a cluster's objects. Depth is bounded like the API server's.
func objectNode(v any, depth int) (*yaml.Node, error) {
	if depth > 100 {
		return nil, errors.New("nested more than 100 levels deep")
	}
	scalar := func(tag, value string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
	}
	switch x := v.(type) {
	case nil:
		return scalar("!!null", "null"), nil
	case string:
		return scalar("!!str", x), nil
	case bool:
		return scalar("!!bool", strconv.FormatBool(x)), nil
	case int64:
		return scalar("!!int", strconv.FormatInt(x, 10)), nil
	case int:
		return scalar("!!int", strconv.Itoa(x)), nil
	case int32:
		return scalar("!!int", strconv.FormatInt(int64(x), 10)), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return scalar("!!int", strconv.FormatInt(int64(x), 10)), nil
		}
		return scalar("!!float", strconv.FormatFloat(x, 'g', -1, 64)), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: make([]*yaml.Node, 0, 2*len(keys))}
		for _, k := range keys {
			c, err := objectNode(x[k], depth+1)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, scalar("!!str", k), c)
		}
		return n, nil
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: make([]*yaml.Node, 0, len(x))}
		for _, it := range x {
			c, err := objectNode(it, depth+1)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, c)
		}
		return n, nil
	}
	var n yaml.Node // another Go type: let the YAML library say what it is
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	return &n, nil
}
