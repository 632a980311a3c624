package adapt

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/kvgate/kvgate/config"
	"gopkg.in/yaml.v3"
)

// Options carries what a manifest cannot say on a machine without a cluster.
// The zero value is usable. Maps are read, never changed.
type Options struct {
	// Endpoints gives a pool's endpoints (--endpoints POOL=ADDR,ADDR). The key
	// is the kvgate pool name (an InferencePool's name, or <service>-<port>)
	// or a Service name. An address without a port gets the pool's target port.
	Endpoints map[string][]string
	// Certs maps a TLS Secret, by "name" or "namespace/name", to PEM files
	// (--cert SECRET=CERT,KEY).
	Certs map[string]CertFiles
	// Labels gives a pool's workload labels (--labels POOL=k=v,k=v), matched
	// by AuthorizationPolicy selectors. The key is any name Endpoints takes
	// for the pool (also namespace/service, or namespace/name for an
	// InferencePool). They are merged over the labels taken from the pool's
	// selector; these win, and a more specific key wins over a Service name.
	Labels map[string]map[string]string
	// Listen overrides the address of a kvgate listener by its name
	// (--listen NAME=HOST:PORT), e.g. inference-gateway-http=127.0.0.1:8080.
	Listen map[string]string
	// Bind is the host for Gateway listener ports; default 0.0.0.0.
	Bind string
	// RootNamespace is Istio's root namespace: an AuthorizationPolicy there
	// without a selector applies to every pool. Default istio-system.
	RootNamespace string
	// Live says the input is a cluster's current state (kvgate run
	// --kubernetes), not files, and changes the few choices that differ:
	// every pool is config.Pool.Discovered and may have no endpoint now (it
	// answers 503 until one is ready) instead of that being an error or a
	// cluster DNS name; an InferencePool's endpoints come from the Pods in
	// the input only; with no Gateway there is no listener (no "default");
	// an HTTPS listener whose Secret is not in Certs is ignored with a
	// warning; a reference to another namespace needs a ReferenceGrant
	// there; and Result.YAML is not printed.
	Live bool
}

// CertFiles are the PEM files that stand for one TLS Secret.
type CertFiles struct {
	Cert, Key string
}

// Resource names the Kubernetes object a warning or error comes from.
type Resource struct {
	Kind, Namespace, Name string
	// File and Line locate the object's document; Line is 1-based, 0 unknown.
	File string
	Line int
}

// String is "Kind namespace/name", or "" for a resource with no kind.
func (r Resource) String() string {
	if r.Kind == "" {
		return ""
	}
	if r.Name == "" {
		return r.Kind
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// at is r located at line instead of the object's line, when line is known.
func (r Resource) at(line int) Resource {
	if line > 0 {
		r.Line = line
	}
	return r
}

func (r Resource) prefix() string {
	var parts []string
	if r.File != "" {
		loc := r.File
		if r.Line > 0 {
			loc += ":" + strconv.Itoa(r.Line)
		}
		parts = append(parts, loc)
	}
	if s := r.String(); s != "" {
		parts = append(parts, s)
	}
	return strings.Join(parts, ": ")
}

func join(prefix, field, msg string) string {
	var b strings.Builder
	for _, s := range []string{prefix, field} {
		if s != "" {
			b.WriteString(s)
			b.WriteString(": ")
		}
	}
	b.WriteString(msg)
	return b.String()
}

// Warning is a field of a manifest that kvgate cannot honour, or a choice
// the adapter made that a reader should know about.
type Warning struct {
	Resource Resource
	// Field is the key path inside the object, like spec.rules[0].filters[1].
	Field string
	// Line is the 1-based line of Field in Resource.File when the decoder
	// knows it; 0 means the object's line (Resource.Line) stands for it.
	Line int
	Msg  string
}

// String is "file:line: Kind ns/name: field: msg", with the field's own
// line when known.
func (w Warning) String() string { return join(w.Resource.at(w.Line).prefix(), w.Field, w.Msg) }

// Error is a manifest that cannot be adapted, or a problem the native
// validator found in the adapted configuration, named by its source object.
type Error struct {
	Resource Resource
	Field    string
	// Line is Field's own line when known, as for Warning.
	Line int
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	return "adapt: " + join(e.Resource.at(e.Line).prefix(), e.Field, e.Msg)
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every error found in one adaptation.
type Errors []*Error

// Error prints one error per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is and errors.As look at each error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Result is one adapted configuration.
type Result struct {
	// Config is defaulted and validated: ready for the proxy.
	Config *config.Config
	// YAML is the native configuration before defaults, as `kvgate adapt`
	// prints it; config.Parse reads it back to an equal Config.
	YAML []byte
	// Warnings lists what was not honoured, in input order.
	Warnings []Warning
	// AttachedRoutes counts, per Gateway listener ("namespace/gateway/
	// listener"), the HTTPRoutes attached to it as Gateway API counts a
	// listener's attachedRoutes: a parentRef selects it (sectionName,
	// port), its allowedRoutes admit the route (namespaces, kinds) and
	// their hostnames intersect, whether or not either is valid otherwise.
	// Set on errors too.
	AttachedRoutes map[string]int
}

// Load adapts the manifests in files (read in order, as one input).
func Load(opts Options, files ...string) (*Result, error) {
	var docs []doc
	var warns []Warning
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, &Error{Resource: Resource{File: f}, Msg: fmt.Sprintf("cannot read the file: %v; check the path and permissions", err), Err: err}
		}
		d, w, err := decodeDocs(data, f)
		if err != nil {
			return nil, err
		}
		docs, warns = append(docs, d...), append(warns, w...)
	}
	return adaptDocs(docs, warns, opts, strings.Join(files, ","))
}

// Parse adapts the manifests in data; source names the file in messages.
func Parse(data []byte, source string, opts Options) (*Result, error) {
	docs, warns, err := decodeDocs(data, source)
	if err != nil {
		return nil, err
	}
	return adaptDocs(docs, warns, opts, source)
}

// FromObjects adapts decoded Kubernetes objects (an unstructured object's
// content, as client-go's dynamic client returns it) with the same decoder
// and translation as Parse; source names the input in messages and is the
// configuration's Source. kvgate run --kubernetes feeds it the cluster's
// objects. An object that cannot be encoded is an error naming it.
func FromObjects(objs []map[string]any, source string, opts Options) (*Result, error) {
	var docs []doc
	var warns []Warning
	budget := maxObjects + len(objs) // a cluster's objects hold no aliases to multiply
	for _, o := range objs {
		if d, ok := directDoc(o); ok {
			if budget--; budget < 0 {
				return nil, &Error{Msg: "too many objects in Lists; give the objects one by one"}
			}
			docs = append(docs, d)
			continue
		}
		n, err := objectNode(o, 0)
		if err != nil {
			md, _ := o["metadata"].(map[string]any)
			name, _ := md["name"].(string)
			kind, _ := o["kind"].(string)
			return nil, &Error{Resource: Resource{Kind: kind, Name: name}, Msg: "cannot read the object: " + err.Error(), Err: err}
		}
		docs, warns = collect(n, "", docs, warns, 0, &budget)
		if budget < 0 {
			return nil, &Error{Msg: "too many objects in Lists; give the objects one by one"}
		}
	}
	return adaptDocs(docs, warns, opts, source)
}

// LoadAny reads path as a native configuration (config.Load) or, when it
// holds Kubernetes manifests (see IsManifest), adapts them. The returned
// configuration is defaulted and validated either way; warnings are only
// ever non-nil for manifests.
func LoadAny(path string, opts Options) (*config.Config, []Warning, error) {
	data, err := os.ReadFile(path)
	if err != nil || !IsManifest(data) {
		c, err := config.Load(path)
		return c, nil, err
	}
	r, err := Parse(data, path, opts)
	if err != nil {
		var warns []Warning
		if r != nil {
			warns = r.Warnings
		}
		return nil, warns, err
	}
	return r.Config, r.Warnings, nil
}

// adaptDocs converts, prints, defaults and validates.
func adaptDocs(docs []doc, warns []Warning, opts Options, source string) (*Result, error) {
	a := newAdapter(opts)
	a.warns = warns
	a.run(docs)
	// Group warnings and errors by object, in file order, and by line within
	// an object; those about no object come first.
	sort.SliceStable(a.warns, func(i, j int) bool {
		return before(a.warns[i].Resource, a.warns[i].Line, a.warns[j].Resource, a.warns[j].Line)
	})
	sort.SliceStable(a.errs, func(i, j int) bool {
		return before(a.errs[i].Resource, a.errs[i].Line, a.errs[j].Resource, a.errs[j].Line)
	})
	attached := make(map[string]int, len(a.attached))
	for l, routes := range a.attached {
		attached[l] = len(routes)
	}
	if len(a.errs) > 0 {
		return &Result{Warnings: a.warns, AttachedRoutes: attached}, a.errs
	}
	var out []byte
	if !opts.Live {
		var err error
		if out, err = Marshal(a.cfg); err != nil {
			return nil, &Error{Msg: "cannot print the configuration: " + err.Error(), Err: err}
		}
	}
	c := a.cfg
	c.Source = source
	config.Default(c)
	if err := config.Validate(c); err != nil {
		return &Result{Warnings: a.warns, AttachedRoutes: attached}, a.validationErrors(err)
	}
	return &Result{Config: c, YAML: out, Warnings: a.warns, AttachedRoutes: attached}, nil
}

// before orders messages by file, object line, then the field's own line.
func before(x Resource, xl int, y Resource, yl int) bool {
	if x.File != y.File {
		return x.File < y.File
	}
	if x.Line != y.Line {
		return x.Line < y.Line
	}
	return xl < yl
}

// validationErrors names the source object of each validation problem.
func (a *adapter) validationErrors(err error) error {
	var ces *config.Errors
	if !errors.As(err, &ces) {
		return &Error{Msg: err.Error(), Err: err}
	}
	var es Errors
	for _, ce := range *ces {
		e := &Error{Field: ce.Path, Msg: ce.Msg + " (in the adapted configuration)", Err: ce}
		for prefix, res := range a.origin {
			if ce.Path == prefix || strings.HasPrefix(ce.Path, prefix+".") || strings.HasPrefix(ce.Path, prefix+"[") {
				e.Resource = res
			}
		}
		es = append(es, e)
	}
	return es
}

// Marshal prints c as native YAML, leaving out the top-level sections that
// hold only zero values (they mean "use the default").
func Marshal(c *config.Config) ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(c); err != nil {
		return nil, err
	}
	if n.Kind == yaml.MappingNode {
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			if !zero(n.Content[i+1]) {
				kept = append(kept, n.Content[i], n.Content[i+1])
			}
		}
		n.Content = kept
	}
	return yaml.Marshal(&n)
}

// zero reports whether a printed section holds nothing: an empty mapping or
// sequence, a mapping of empty strings, or a zero duration.
func zero(n *yaml.Node) bool {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			if !zero(n.Content[i]) {
				return false
			}
		}
		return true
	case yaml.SequenceNode:
		return len(n.Content) == 0 || n.Tag == "!!null"
	case yaml.ScalarNode:
		return n.Value == "" || n.Value == "0s" || n.Tag == "!!null"
	}
	return false
}
