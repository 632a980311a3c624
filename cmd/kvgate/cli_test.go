package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// result is what one in-process `kvgate ARGS...` did.
type result struct {
	code           int
	stdout, stderr string
	err            error
}

// message is everything a user sees when the command fails: its output and
// the error main prints.
func (r result) message() string {
	s := r.stdout + r.stderr
	if r.err != nil {
		s += "kvgate: " + r.err.Error()
	}
	return s
}

const (
	quickstart = "../../examples/quickstart.yaml"
	manifest   = testdata + "/inferencepool-v1.yaml"
	endpoints  = "vllm-llama=10.0.2.1"
)

// subcommands lists every subcommand a user can type after "kvgate".
var subcommands = []string{"run", "validate", "adapt", "sim", "demo", "version"}

// TestEveryCommandHelp: `SUB --help`, `SUB -h` and `kvgate help SUB` print
// that subcommand's help on stdout and exit 0, for every subcommand.
func TestEveryCommandHelp(t *testing.T) {
	for _, sub := range subcommands {
		for _, args := range [][]string{{sub, "--help"}, {sub, "-h"}, {"help", sub}, {sub, "-help"}} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				r := invoke(t, args...)
				if r.code != 0 {
					t.Fatalf("exit %d, want 0\n%s", r.code, r.message())
				}
				if want := "Usage: kvgate " + sub; !strings.Contains(r.stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
				}
				if r.stderr != "" {
					t.Errorf("stderr not empty: %q", r.stderr)
				}
			})
		}
	}
}

// TestEveryCommandRefusesWhatItDoesNotUnderstand: an unknown flag, or an
// argument a subcommand does not take, is a usage error (exit 2) naming the
// argument and where to look, for every subcommand; nothing is ignored.
func TestEveryCommandRefusesWhatItDoesNotUnderstand(t *testing.T) {
	type tc struct {
		args []string
		want []string // in the message; the argument and the help to read
	}
	var cases []tc
	for _, sub := range subcommands {
		hint := "kvgate " + sub + " --help"
		cases = append(cases,
			tc{[]string{sub, "--no-such-flag"}, []string{"--no-such-flag", hint}},
			tc{[]string{sub, "--no-such-flag=1"}, []string{"--no-such-flag", hint}},
		)
	}
	cases = append(cases,
		tc{[]string{"run", quickstart, "stray"}, []string{`"stray"`, "kvgate run --help"}},
		tc{[]string{"validate", quickstart, "stray"}, []string{`"stray"`, "kvgate validate --help"}},
		tc{[]string{"sim", "stray", "--addr", "127.0.0.1:0"}, []string{`"stray"`, "kvgate sim --help"}},
		tc{[]string{"sim", "--addr", "127.0.0.1:0", "stray"}, []string{`"stray"`, "kvgate sim --help"}},
		tc{[]string{"demo", "stray"}, []string{`"stray"`, "kvgate demo --help"}},
		tc{[]string{"version", "stray"}, []string{`"stray"`, "kvgate version --help"}},
		tc{[]string{"help", "run", "stray"}, []string{`"stray"`}},
		tc{[]string{"help", "nope"}, []string{`"nope"`, "kvgate help"}},
		tc{[]string{"rnu"}, []string{`"rnu"`, `"run"`}},
		tc{[]string{"run", "--sim"}, []string{"--sim"}},
		tc{[]string{"run", "--log-levl", "debug"}, []string{"--log-levl", "--log-level"}},
		tc{[]string{"run", "--config"}, []string{"--config", "needs a value"}},
		tc{[]string{"sim", "--count", "x"}, []string{"--count", `"x"`}},
		tc{[]string{"run", "--config", quickstart, "other.yaml"}, []string{quickstart, "other.yaml"}},
		tc{[]string{"validate"}, []string{"kvgate validate FILE"}},
		tc{[]string{"run", "--admin", "nope"}, []string{`--admin "nope"`, "HOST:PORT"}},
		tc{[]string{"run", "--endpoints", endpoints}, []string{"--endpoints", "no FILE"}},
		tc{[]string{"--config", quickstart, "run"}, []string{"--config", "after"}},
		tc{[]string{"demo", "--duration", "5"}, []string{"--duration", "10s"}},
		tc{[]string{"demo", "--synthetic=maybe"}, []string{"--synthetic", "true or false"}},
		tc{[]string{"adapt"}, []string{"FILE"}},
		tc{[]string{"run", "--kubeconfig", "k.yaml"}, []string{"--kubeconfig", "--kubernetes"}},
		tc{[]string{"run", "--controller-name", "x/y"}, []string{"--controller-name", "--kubernetes"}},
		tc{[]string{"run", "--kubernetes", manifest}, []string{manifest, "from the cluster"}},
	)
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := invoke(t, c.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2\n%s", r.code, r.message())
			}
			for _, w := range c.want {
				if !strings.Contains(r.message(), w) {
					t.Errorf("message lacks %q:\n%s", w, r.message())
				}
			}
		})
	}
}

// TestFlagsAnywhere: flags may come before or after a subcommand's
// arguments, and a positional FILE is the config of run and validate.
func TestFlagsAnywhere(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("listeners: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string // in stdout+stderr+error
	}{
		{[]string{"validate", quickstart}, 0, "is valid"},
		{[]string{"validate", manifest, "--endpoints", endpoints}, 0, "is valid"},
		{[]string{"validate", "--endpoints", endpoints, manifest}, 0, "is valid"},
		{[]string{"validate", "--endpoints=" + endpoints, "--", manifest}, 0, "is valid"},
		{[]string{"validate", "--config", quickstart, quickstart}, 0, "is valid"},
		{[]string{"adapt", manifest, "--endpoints", endpoints}, 0, "10.0.2.1:8000"},
		{[]string{"adapt", manifest, "--strict", "--endpoints", endpoints}, 3, "--strict"},
		// run takes its FILE: a broken file is refused, not swapped for the embedded config.
		{[]string{"run", bad}, 1, "bad.yaml"},
		{[]string{"run", bad, "--log-level", "debug"}, 1, "bad.yaml"},
		{[]string{"run", "--config", bad, bad}, 1, "bad.yaml"},
		// a flag after FILE is read, not dropped
		{[]string{"run", quickstart, "--log-level", "bogus"}, 2, "--log-level"},
		{[]string{"sim", "--addr", "127.0.0.1:0", "--count", "0"}, 2, "--count"},
		// adapt flags are for manifests; a native config says the same in the file
		{[]string{"validate", quickstart, "--endpoints", endpoints}, 2, "--endpoints"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := invoke(t, c.args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d\n%s", r.code, c.code, r.message())
			}
			if !strings.Contains(r.message(), c.want) {
				t.Errorf("message lacks %q:\n%s", c.want, r.message())
			}
		})
	}
}

// TestHelpListsEveryFlag: each subcommand's help lists each of its flags
// once, under a heading of its own (none falls through to "Other flags").
func TestHelpListsEveryFlag(t *testing.T) {
	for _, c := range commands {
		var help strings.Builder
		fs := c.flags()
		c.printHelp(&help, fs)
		if strings.Contains(help.String(), "Other flags") {
			t.Errorf("%s: a flag is in no group:\n%s", c.name, help.String())
		}
		fs.VisitAll(func(f *flag.Flag) {
			re := regexp.MustCompile(`(?m)^  --` + regexp.QuoteMeta(f.Name) + `\b`)
			if n := len(re.FindAllString(help.String(), -1)); n != 1 {
				t.Errorf("%s: --%s listed %d times in help:\n%s", c.name, f.Name, n, help.String())
			}
		})
	}
}

// TestTopLevelHelp: `kvgate`, `kvgate help`, `--help` and `-h`.
func TestTopLevelHelp(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
	}{{nil, 2}, {[]string{"help"}, 0}, {[]string{"--help"}, 0}, {[]string{"-h"}, 0}} {
		r := invoke(t, c.args...)
		if r.code != c.code {
			t.Errorf("kvgate %v: exit %d, want %d", c.args, r.code, c.code)
		}
		out := r.stdout
		if c.code != 0 {
			out = r.stderr
		}
		for _, sub := range subcommands {
			if !strings.Contains(out, "kvgate "+sub) {
				t.Errorf("kvgate %v: usage lacks %q:\n%s", c.args, sub, out)
			}
		}
	}
}

// invokeTimeout bounds one in-process command: none of the cases above
// should serve, but a regression that does must not hang the test.
const invokeTimeout = 5 * time.Second

func invokeContext(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), invokeTimeout)
}

// invoke runs `kvgate args...` in process, as main does but with its
// output captured.
func invoke(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := invokeContext(t)
	defer cancel()
	var out, errOut strings.Builder
	err := run(ctx, args, &out, &errOut)
	return result{code: codeOf(err), stdout: out.String(), stderr: errOut.String(), err: err}
}
