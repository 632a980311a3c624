package adapt

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvgate/kvgate/config"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// caseOptions reads the options of a test input from its first line,
// "# flags: --endpoints ... --cert ...", through the real flag parser.
func caseOptions(t *testing.T, data []byte) Options {
	t.Helper()
	var opts Options
	first, _, _ := bytes.Cut(data, []byte("\n"))
	args, ok := strings.CutPrefix(string(first), "# flags:")
	if !ok {
		return opts
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	RegisterFlags(fs, &opts)
	if err := fs.Parse(strings.Fields(args)); err != nil {
		t.Fatalf("flags line: %v", err)
	}
	return opts
}

// checkGolden compares got with the file, or writes it under -update.
func checkGolden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if len(got) == 0 {
			os.Remove(file)
			return
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update to accept):\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

// TestGolden adapts every testdata/*.yaml and compares the native YAML
// (.golden), the warnings (.warnings) and any error (.error).
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(in, ".yaml")
		t.Run(filepath.Base(name), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Parse(data, filepath.ToSlash(in), caseOptions(t, data))
			var warns, errText bytes.Buffer
			if r != nil {
				for _, w := range r.Warnings {
					warns.WriteString(w.String() + "\n")
				}
			}
			if err != nil {
				errText.WriteString(err.Error() + "\n")
			}
			checkGolden(t, name+".warnings", warns.Bytes())
			checkGolden(t, name+".error", errText.Bytes())
			if err != nil {
				if r != nil && r.Config != nil {
					t.Error("a failed adaptation returned a Config")
				}
				checkGolden(t, name+".golden", nil)
				return
			}
			checkGolden(t, name+".golden", r.YAML)
			roundTrip(t, r)
		})
	}
}

// roundTrip parses the printed YAML with the native loader and checks it
// holds the same listeners, routes, pools and policies.
func roundTrip(t *testing.T, r *Result) {
	t.Helper()
	back, err := config.Parse(r.YAML, "adapted")
	if err != nil {
		t.Fatalf("adapted YAML does not parse:\n%v\n%s", err, r.YAML)
	}
	again, err := Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Marshal(r.Config)
	if !bytes.Equal(again, want) {
		t.Errorf("round trip changed the configuration:\n--- parsed back\n%s\n--- adapted\n%s", again, want)
	}
}
