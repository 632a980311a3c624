package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const base = `
listeners: [{name: plain, address: 127.0.0.1:8080}]
routes: [{name: default, backends: [{pool: backend}]}]
pools: [{name: backend, endpoints: ["127.0.0.1:8000"]}]
`

// TestDecodeProblems checks single decoding problems: the path, the line and
// the message.
func TestDecodeProblems(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       string // the whole first line of the error
	}{
		{"bool", base + "listeners2: 1\n", `t.yaml:5:1: listeners2: unknown key "listeners2"; did you mean "listeners"?`},
		{"unknown without suggestion", base + "zzz: 1\n", `t.yaml:5:1: zzz: unknown key "zzz"; the keys allowed here are admin, listeners, identity, routes, pools, authorization, limits, paths, accessLog, tracing, drainTimeout`},
		{"string expected", base + "admin: {address: [a]}\n", `t.yaml:5:18: admin.address: expected a string, got a list`},
		{"mapping expected", base + "admin: 9901\n", `t.yaml:5:8: admin: expected a mapping with keys like address, pprof, tokenFile, got the number 9901`},
		{"int overflow", base + "limits: {maxHeaders: 99999999999999999999}\n", `t.yaml:5:22: limits.maxHeaders: expected a whole number, got the number 99999999999999999999`},
		{"repeated key", base + "routes: []\n", `t.yaml:5:1: routes: key "routes" is repeated (first at line 3); keep one`},
		{"nan", "limits: {}\n" + base + "authorization: [{name: p, action: ALLOW}]\npools2: .nan\n", `unknown key "pools2"; did you mean "pools"?`},
		{"merge key", "admin: &a {address: 127.0.0.1:1}\nlimits: {<<: *a}\n" + base, `t.yaml:2:10: limits.<<: merge keys (<<) are not supported; write the keys out or alias the whole value`},
		{"non-scalar key", base + "? [a]\n: b\n", `t.yaml:5:3: keys must be plain names, got a list`},
		{"duration unit", base + "drainTimeout: 30\n", `t.yaml:5:15: drainTimeout: 30 has no unit: write 30s or 30ms`},
		{"duration negative", base + "drainTimeout: -1s\n", `t.yaml:5:15: drainTimeout: -1s is negative: write 0 or a positive duration like 30s`},
		{"duration zero", base + "limits: {idleTimeout: 0}\nzzz: 1\n", `t.yaml:6:1: zzz: unknown key`},
		{"second document", base + "---\nadmin: {}\n", `t.yaml:5:1: a second YAML document starts here`},
		{"tab", "listeners:\n\t- name: a\n", `t.yaml:2: yaml: found character that cannot start any token; this line has a tab: YAML indents with spaces only`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "t.yaml")
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			first, _, _ := strings.Cut(err.Error(), "\n")
			if !strings.Contains(first, tc.want) {
				t.Errorf("first problem:\n %s\nwant it to contain:\n %s", first, tc.want)
			}
		})
	}
}

func TestDecodeFloats(t *testing.T) {
	for _, v := range []string{".nan", ".inf", "-.inf"} {
		y := base + "routes2: 1\n"
		y = strings.Replace(base, "backends: [{pool: backend}]", "backends: [{pool: backend}], retry: {attempts: 1, budgetPercent: "+v+"}", 1)
		_, err := Parse([]byte(y), "t.yaml")
		if err == nil || !strings.Contains(err.Error(), "routes[0].retry.budgetPercent: expected a finite number") {
			t.Errorf("budgetPercent %s: got %v", v, err)
		}
	}
	y := strings.Replace(base, "backends: [{pool: backend}]", "backends: [{pool: backend}], retry: {attempts: 1, budgetPercent: 7}", 1)
	c, err := Parse([]byte(y), "t.yaml")
	if err != nil || c.Routes[0].Retry.BudgetPercent != 7 {
		t.Errorf("an integer for a float field: %v", err)
	}
}

func TestAliases(t *testing.T) {
	y := `
listeners: [{name: plain, address: 127.0.0.1:8080}]
routes:
  - name: a
    backends: &split [{pool: backend, weight: 3}]
  - name: b
    backends: *split
pools: [{name: backend, endpoints: ["127.0.0.1:8000"]}]
`
	c, err := Parse([]byte(y), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if *c.Routes[1].Backends[0].Weight != 3 {
		t.Error("alias not expanded")
	}
	if c.Routes[1].Backends[0].Weight == c.Routes[0].Backends[0].Weight {
		t.Error("an alias shares memory between two places")
	}
}

// TestAliasBomb checks that nested aliases (a "billion laughs" file) stop at
// the node budget with an error instead of running for ever: 100 policies of
// 100 rules of 100 sources of 100 principals, in a few kilobytes.
func TestAliasBomb(t *testing.T) {
	times := func(alias string) string { return strings.TrimSuffix(strings.Repeat(alias+", ", 99), ", ") }
	y := base + "authorization:\n  - &p {name: p, action: ALLOW, rules: [&r {from: [&f {principals: [" +
		strings.Repeat("a, ", 99) + "a]}, " + times("*f") + "]}, " + times("*r") + "]}\n"
	for range 99 {
		y += "  - *p\n"
	}
	_, err := Parse([]byte(y), "bomb.yaml")
	if err == nil || !strings.Contains(err.Error(), "expands too many aliases") {
		t.Fatalf("want the node budget to stop decoding, got %v", err)
	}
	if n := strings.Count(err.Error(), "\n"); n > 1000 {
		t.Errorf("the bomb produced %d problems; the budget should keep the report short", n)
	}
}

func TestNullsAreAbsent(t *testing.T) {
	y := base + "identity:\nadmin: ~\nlimits: {maxHeaders: null}\n"
	c, err := Parse([]byte(y), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Identity != nil || c.Admin.Address != DefaultAdminAddress || c.Limits.MaxHeaders != DefaultMaxHeaders {
		t.Errorf("null values were not treated as absent: %+v %+v", c.Identity, c.Limits)
	}
}

// TestDecodeQuietsFollowOnProblems checks that a value that failed to decode
// is not reported again by validation.
func TestDecodeQuietsFollowOnProblems(t *testing.T) {
	y := `
listeners: [{name: plain, adress: 127.0.0.1:8080}]
routes: [{name: default, backends: [{pool: backend, weight: x}]}]
pools: {name: backend}
`
	_, err := Parse([]byte(y), "t.yaml")
	var es *Errors
	if !errors.As(err, &es) {
		t.Fatal(err)
	}
	if len(*es) != 3 {
		t.Errorf("want exactly the 3 decoding problems, got:\n%v", err)
	}
}

func TestPosition(t *testing.T) {
	c := quick(t)
	if p := c.Position("routes[0].backends[0].pool"); p.Line != 29 || p.Column != 15 {
		t.Errorf("Position = %+v, want line 29 column 15", p)
	}
	// A key that was not written reports its nearest written parent.
	if p, q := c.Position("routes[0].retry.attempts"), c.Position("routes[0]"); p != q || p.Line == 0 {
		t.Errorf("missing key at %+v, want its route at %+v", p, q)
	}
	e := c.ErrorAt("listeners[0].address", "cannot listen: address in use")
	if got := e.Error(); got != "quickstart.yaml:21:14: listeners[0].address: cannot listen: address in use" {
		t.Errorf("ErrorAt = %q", got)
	}
	if p := (&Config{}).Position("listeners"); p != (Pos{}) {
		t.Errorf("built in code: %+v", p)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.yaml"))
	var es *Errors
	if !errors.As(err, &es) || len(*es) != 1 {
		t.Fatalf("Load = %v, want one problem in a *Errors", err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Error("errors.Is(err, fs.ErrNotExist) = false; the cause must stay reachable")
	}
}

func TestLoadSetsSource(t *testing.T) {
	f := filepath.Join(t.TempDir(), "k.yaml")
	if err := os.WriteFile(f, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != f || c.Routes[0].Matches[0].Path.Value != "/" {
		t.Errorf("Source = %q, matches = %+v", c.Source, c.Routes[0].Matches)
	}
}

func TestErrorFormat(t *testing.T) {
	cases := []struct {
		e    Error
		want string
	}{
		{Error{File: "k.yaml", Line: 3, Column: 5, Path: "a.b", Msg: "m"}, "k.yaml:3:5: a.b: m"},
		{Error{File: "k.yaml", Line: 3, Msg: "m"}, "k.yaml:3: m"},
		{Error{File: "k.yaml", Path: "a", Msg: "m"}, "k.yaml: a: m"},
		{Error{Path: "a", Msg: "m"}, "a: m"},
		{Error{Msg: "m"}, "m"},
	}
	for _, c := range cases {
		if got := c.e.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
	}
	es := Errors{{Line: 9, Msg: "b"}, {Msg: "c"}, {Line: 2, Column: 7, Msg: "a2"}, {Line: 2, Column: 1, Msg: "a1"}}
	sortErrors(es)
	if got := es.Error(); got != ":2:1: a1\n:2:7: a2\n:9: b\nc" {
		t.Errorf("sorted = %q", got)
	}
}

func TestProblemsAreCapped(t *testing.T) {
	y := "listeners: [&l {name: a, protocols: [http9]}, " + strings.Repeat("*l, ", 1500) + "*l]\n"
	_, err := Parse([]byte(y), "many.yaml")
	var es *Errors
	if !errors.As(err, &es) || len(*es) != MaxProblems+1 {
		t.Fatalf("got %d problems, want %d and a summary", len(*es), MaxProblems)
	}
	if last := (*es)[MaxProblems]; !strings.HasSuffix(last.Msg, "more problems not shown; fix these first") || last.File != "many.yaml" {
		t.Errorf("last = %+v", last)
	}
}
