package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/kvgate/kvgate/config/adapt"
)

// adaptOpts are the flags of `kvgate adapt`.
type adaptOpts struct {
	adapt  adapt.Options
	strict bool
}

func (o *adaptOpts) flagSet() *flag.FlagSet {
	fs := newFlagSet("adapt")
	adapt.RegisterFlags(fs, &o.adapt)
	fs.BoolVar(&o.strict, "strict", false, "exit with status 3 when there are warnings")
	return fs
}

var cmdAdapt = &command{
	name:     "adapt",
	synopsis: "FILE... [flags]",
	summary:  "turn Gateway API / Inference Extension / Istio manifests into a kvgate config",
	about: `Read Kubernetes manifests (Gateway, HTTPRoute, InferencePool, AuthorizationPolicy, Service,
EndpointSlice) from the FILEs as one input and print the kvgate config they make on stdout;
what kvgate cannot honour is printed as warnings on stderr. The flags say what a manifest
cannot say on a machine without a cluster. kvgate run and validate read manifests directly,
with the same flags.`,
	args:    "manifest FILE...",
	minArgs: 1,
	maxArgs: -1,
	groups: []flagGroup{
		{"Kubernetes manifests", manifestFlags},
		{"Output", []string{"strict"}},
	},
	flags: func() *flag.FlagSet { return new(adaptOpts).flagSet() },
}

// runAdapt is `kvgate adapt [flags] FILE...`: native YAML on out, warnings on errOut.
func runAdapt(args []string, out, errOut io.Writer) error {
	var o adaptOpts
	files, ok, err := cmdAdapt.parse(o.flagSet(), args, out)
	if !ok {
		return err
	}
	r, err := adapt.Load(o.adapt, files...)
	if r != nil {
		for _, w := range r.Warnings {
			fmt.Fprintln(errOut, "warning:", w)
		}
	}
	if err != nil {
		fmt.Fprintln(errOut, err)
		return &exitError{1, errors.New("the manifests could not be adapted")}
	}
	if _, err := out.Write(r.YAML); err != nil {
		return err
	}
	if o.strict && len(r.Warnings) > 0 {
		return &exitError{3, fmt.Errorf("%d warnings (--strict)", len(r.Warnings))}
	}
	return nil
}
