package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/kvgate/kvgate/config"
)

// command describes one subcommand for its help and its argument checks.
// The flags themselves live in a flag.FlagSet that the subcommand builds;
// groups only say under which heading each one is listed.
type command struct {
	name     string
	synopsis string // after "kvgate NAME": "[FILE] [flags]"
	summary  string // the line in `kvgate help`
	about    string // the paragraphs under the usage line of `kvgate NAME --help`
	groups   []flagGroup
	// args says what the positional arguments are, for messages: "" means
	// the command takes none; maxArgs < 0 means any number.
	args             string
	minArgs, maxArgs int
	// flags returns a fresh flag set with every flag of the command, for
	// help text (the subcommand itself builds one bound to its options).
	flags func() *flag.FlagSet
}

// flagGroup is one heading of a command's help and the flags under it.
type flagGroup struct {
	title string
	names []string
}

// usageError is a command line that was not understood: exit status 2.
func usageError(format string, a ...any) error {
	return &exitError{2, fmt.Errorf(format, a...)}
}

// seeHelp is the pointer every usage error of cmd ends with.
func (c *command) seeHelp() string {
	return fmt.Sprintf(`see "kvgate %s --help"`, c.name)
}

// parse reads args for c into fs. Flags may come before, between and after
// the positional arguments, which it returns in order; "--" ends the flags.
// A flag is written -name or --name, with its value as the next argument or
// after "=" (booleans take "=" only). -h, -help and --help anywhere before
// "--" print c's help to stdout; parse then returns ok false and a nil error.
// Every other problem is a usage error that names the argument and the fix:
// an unknown flag (with the closest known one), a flag without its value, a
// value the flag refuses, or more or fewer arguments than c takes.
func (c *command) parse(fs *flag.FlagSet, args []string, stdout io.Writer) (pos []string, ok bool, err error) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			c.printHelp(stdout, fs)
			return nil, false, nil
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a) // "-" alone is an argument (stdin, by custom)
			continue
		}
		spelled, value, hasValue := strings.Cut(a, "=")
		name := strings.TrimPrefix(spelled[1:], "-")
		f := fs.Lookup(name)
		if f == nil || name == "" || name[0] == '-' {
			return nil, false, c.unknownFlag(fs, spelled)
		}
		if !hasValue {
			if isBool(f) {
				value = "true"
			} else if i+1 < len(args) {
				i++
				value = args[i]
			} else {
				return nil, false, usageError("%s: flag %s needs a value: write %s %s; %s", c.name, spelled, spelled, valueName(f), c.seeHelp())
			}
		}
		if err := fs.Set(name, value); err != nil {
			return nil, false, usageError("%s: %s %q: %s; %s", c.name, spelled, value, setError(f, err), c.seeHelp())
		}
	}
	switch {
	case len(pos) < c.minArgs:
		return nil, false, usageError("%s: %s is missing: write kvgate %s; %s", c.name, c.args, c.usageLine(), c.seeHelp())
	case c.maxArgs >= 0 && len(pos) > c.maxArgs:
		extra := pos[c.maxArgs]
		if c.maxArgs == 0 {
			return nil, false, usageError("%s: unexpected argument %q: %s takes flags only, no arguments (a flag is written --name VALUE); %s", c.name, extra, c.name, c.seeHelp())
		}
		if c.maxArgs == 1 {
			return nil, false, usageError("%s: unexpected argument %q: %s takes one %s (given %q); %s", c.name, extra, c.name, c.args, pos[0], c.seeHelp())
		}
		return nil, false, usageError("%s: unexpected argument %q: %s takes at most %d arguments; %s", c.name, extra, c.name, c.maxArgs, c.seeHelp())
	}
	return pos, true, nil
}

// unknownFlag names a flag fs does not define and the closest one it does.
func (c *command) unknownFlag(fs *flag.FlagSet, spelled string) error {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	got := strings.TrimLeft(spelled, "-")
	if s := config.Suggest(got, names); s != "" {
		return usageError("%s: unknown flag %s: did you mean --%s? %s", c.name, spelled, s, c.seeHelp())
	}
	if len(names) == 0 {
		return usageError("%s: unknown flag %s: %s takes no flags; %s", c.name, spelled, c.name, c.seeHelp())
	}
	return usageError("%s: unknown flag %s; %s for the flags it takes", c.name, spelled, c.seeHelp())
}

// setError says why f refused a value. The standard flag values answer
// only "parse error" or "value out of range"; they get what was expected.
func setError(f *flag.Flag, err error) string {
	msg := err.Error()
	if msg == "value out of range" {
		return "out of range"
	}
	if msg != "parse error" {
		return msg // a flag.Value of kvgate's, which says what to write
	}
	if isBool(f) {
		return "not true or false"
	}
	switch kind, _ := flag.UnquoteUsage(&flag.Flag{Value: f.Value}); kind {
	case "int", "uint":
		return "not a whole number"
	case "float":
		return "not a number"
	case "duration":
		return "not a duration: write it like 500ms, 10s or 1m30s"
	default:
		return "not a valid " + kind
	}
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// metavars names the value of flags whose usage text does not (flags of
// other packages).
var metavars = map[string]string{"bind": "HOST"}

// valueName is the placeholder for f's value in help: a `quoted` word of its
// usage, a leading "NAME: " of its usage, or its type.
func valueName(f *flag.Flag) string {
	if isBool(f) {
		return ""
	}
	if m, ok := metavars[f.Name]; ok {
		return m
	}
	if name, _ := flag.UnquoteUsage(f); strings.Contains(f.Usage, "`") {
		return name
	}
	if head, _, ok := strings.Cut(f.Usage, ": "); ok && isPlaceholder(head) {
		return head
	}
	name, _ := flag.UnquoteUsage(f)
	return strings.ToUpper(name)
}

// isPlaceholder reports whether the head of a usage text ("POOL=ADDR,ADDR: ...")
// shows the form of the value rather than starting a sentence.
func isPlaceholder(head string) bool {
	return head != "" && !strings.ContainsAny(head, " ") && (strings.ToUpper(head) == head || strings.Contains(head, "="))
}

// usageText is f's usage without the value placeholder valueName took from it.
func usageText(f *flag.Flag) string {
	if strings.Contains(f.Usage, "`") {
		_, u := flag.UnquoteUsage(f)
		return u
	}
	if head, rest, ok := strings.Cut(f.Usage, ": "); ok && head == valueName(f) {
		return rest
	}
	return f.Usage
}

// printHelp writes c's help: usage, what it does, and its flags by group.
func (c *command) printHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: kvgate %s\n\n%s\n", c.usageLine(), strings.TrimSpace(c.about))
	groups := c.groups
	var listed, other []string
	for _, g := range groups {
		listed = append(listed, g.names...)
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !slices.Contains(listed, f.Name) {
			other = append(other, f.Name)
		}
	})
	if len(other) > 0 {
		groups = append(slices.Clip(groups), flagGroup{"Other flags", other})
	}
	for _, g := range groups {
		fmt.Fprintf(w, "\n%s:\n", g.title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, n := range g.names {
			f := fs.Lookup(n)
			if f == nil {
				panic("kvgate: help of " + c.name + " lists an undefined flag " + n)
			}
			left := "  --" + f.Name
			if v := valueName(f); v != "" {
				left += " " + v
			}
			text := usageText(f)
			if d := f.DefValue; d != "" && d != "false" && d != "0" && !strings.Contains(text, "default") {
				text += " (default " + d + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\n", left, text)
		}
		_ = tw.Flush()
	}
	if len(listed)+len(other) == 0 {
		fmt.Fprintf(w, "\n-h, --help prints this help.\n")
		return
	}
	fmt.Fprintf(w, "\nFlags go before or after the arguments (\"--\" ends them); -h, --help prints this help.\n")
}

// usageLine is "NAME SYNOPSIS", as `kvgate help` and the help of c show it.
func (c *command) usageLine() string {
	return strings.TrimSpace(c.name + " " + c.synopsis)
}
