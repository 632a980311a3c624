package config

import (
	"bytes"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kvgate/kvgate/pick"
)

func TestExamplesParse(t *testing.T) {
	for _, f := range []string{"../examples/quickstart.yaml", "../examples/full.yaml"} {
		c, err := Load(f)
		if err != nil {
			t.Fatalf("Load(%s):\n%v", f, err)
		}
		if c.Source != f {
			t.Errorf("Source = %q, want %q", c.Source, f)
		}
	}
}

func TestQuickstartShape(t *testing.T) {
	c, err := Parse(DefaultYAML, "default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Listeners) != 1 || c.Listeners[0].Address != "127.0.0.1:8080" || c.Listeners[0].TLS != nil ||
		!slices.Equal(c.Listeners[0].Protocols, []string{"http1", "http2"}) {
		t.Errorf("listeners = %+v, want one plaintext http1+http2 listener on 127.0.0.1:8080", c.Listeners)
	}
	if c.Admin.Address != "127.0.0.1:9901" {
		t.Errorf("admin.address = %q", c.Admin.Address)
	}
	if len(c.Routes) != 1 || len(c.Routes[0].Backends) != 1 || c.Routes[0].Backends[0].Pool != "backend" ||
		*c.Routes[0].Matches[0].Path != (PathMatch{Type: "PathPrefix", Value: "/"}) {
		t.Errorf("routes = %+v, want PathPrefix / to pool backend", c.Routes)
	}
	if len(c.Pools) != 1 || c.Pools[0].Name != "backend" || !slices.Equal(c.Pools[0].Endpoints, []string{"127.0.0.1:8000"}) {
		t.Errorf("pools = %+v, want backend at 127.0.0.1:8000", c.Pools)
	}
}

// TestDefaultYAMLIsQuickstart keeps the embedded default and the example identical.
func TestDefaultYAMLIsQuickstart(t *testing.T) {
	want, err := os.ReadFile("../examples/quickstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(DefaultYAML, want) {
		t.Fatal("config/default.yaml differs from examples/quickstart.yaml; copy the example over it")
	}
}

// notInFull are keys full.yaml may only mention in a comment, because they
// exclude a key it does set.
var notInFull = []string{"identity.files", "identity.files.dir"}

// TestFullCoversEveryKey checks that examples/full.yaml writes every key of
// the schema at least once, so the reference cannot fall behind the types.
func TestFullCoversEveryKey(t *testing.T) {
	c, err := Load("../examples/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	index := regexp.MustCompile(`\[\d+\]`)
	written := map[string]bool{}
	for p := range c.pos {
		written[index.ReplaceAllString(p, "[]")] = true
	}
	var missing []string
	for _, k := range schemaKeys(reflect.TypeFor[Config](), "", map[reflect.Type]bool{}) {
		if !written[k] && !slices.Contains(notInFull, k) {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("examples/full.yaml does not set %d keys:\n%v", len(missing), missing)
	}
}

// schemaKeys lists every key path of type t, lists written as "[]". A struct
// type met again (Filter under routes and under backends) is listed only
// where it is first met.
func schemaKeys(t reflect.Type, path string, seen map[reflect.Type]bool) []string {
	switch t.Kind() {
	case reflect.Pointer:
		return schemaKeys(t.Elem(), path, seen)
	case reflect.Slice:
		return schemaKeys(t.Elem(), path+"[]", seen)
	case reflect.Struct:
		if t == durationType || seen[t] {
			return nil
		}
		seen[t] = true
		var out []string
		for i := range t.NumField() {
			if name := yamlName(t.Field(i)); name != "" {
				p := childPath(path, name)
				out = append(out, p)
				out = append(out, schemaKeys(t.Field(i).Type, p, seen)...)
			}
		}
		return out
	}
	return nil
}

func TestSchemaKeysSeesNestedKeys(t *testing.T) {
	keys := schemaKeys(reflect.TypeFor[Config](), "", map[reflect.Type]bool{})
	for _, k := range []string{"routes[].backends[].pool", "pools[].inference.scorers[].weight", "authorization[].rules[].when[].notValues", "limits.maxConnections"} {
		if !slices.Contains(keys, k) {
			t.Errorf("schemaKeys misses %s", k)
		}
	}
	if slices.Contains(keys, "source") || slices.Contains(keys, "pos") {
		t.Error("schemaKeys lists a field that is not a key")
	}
}

// TestFullListsPickNames keeps the choices examples/full.yaml lists in its
// comments for balancer, picker and scorers equal to package pick's
// registry, the one place those names are declared.
func TestFullListsPickNames(t *testing.T) {
	b, err := os.ReadFile("../examples/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// choices returns the |-separated names in the comments of the lines
	// that match key, "(default)" and any "label:" dropped.
	choices := func(key *regexp.Regexp) []string {
		var out []string
		for _, line := range strings.Split(string(b), "\n") {
			_, comment, ok := strings.Cut(line, "# ")
			if !ok || !key.MatchString(line) {
				continue
			}
			if _, rest, ok := strings.Cut(comment, ": "); ok {
				comment = rest
			}
			for _, c := range strings.Split(comment, "|") {
				if c = strings.TrimSpace(strings.ReplaceAll(c, "(default)", "")); c != "" {
					out = append(out, c)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
	for _, c := range []struct {
		key  string
		want []string
	}{
		{`^\s+balancer: least-request`, pick.BalancerNames()},
		{`^\s+picker: latency `, pick.PresetNames()},
		{`^\s+- \{name: (prefix|queue), weight`, pick.Names(pick.KindScorer)},
	} {
		if got, want := choices(regexp.MustCompile(c.key)), sorted(c.want); !slices.Equal(got, want) {
			t.Errorf("examples/full.yaml lists %v where %s is; package pick registers %v", got, c.key, want)
		}
	}
}
