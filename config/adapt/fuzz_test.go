package adapt

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kvgate/kvgate/config"
)

// FuzzParse feeds arbitrary bytes to the manifest decoder and adapter. It
// must never panic, and whatever it accepts must be a valid configuration
// whose printed YAML the native loader reads back.
func FuzzParse(f *testing.F) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	for _, in := range inputs {
		if data, err := os.ReadFile(in); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: List, items: [*a]}]\n"))
	f.Add([]byte("a: &a [*a]\n"))
	opts := Options{Endpoints: map[string][]string{"p": {"127.0.0.1:1"}, "svc": {"127.0.0.1"}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		IsManifest(data)
		r, err := Parse(data, "fuzz.yaml", opts)
		if err != nil {
			return
		}
		if err := config.Validate(r.Config); err != nil {
			t.Fatalf("accepted a configuration that does not validate: %v", err)
		}
		if _, err := config.Parse(r.YAML, "fuzz-out.yaml"); err != nil {
			t.Fatalf("printed YAML does not parse back: %v\n%s", err, r.YAML)
		}
	})
}
