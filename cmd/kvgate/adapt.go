package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/config/adapt"
)

// runAdapt is `kvgate adapt [flags] FILE...`: native YAML on out, warnings on errOut.
func runAdapt(args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("adapt", flag.ContinueOnError)
	fs.SetOutput(errOut)
	var opts adapt.Options
	adapt.RegisterFlags(fs, &opts)
	strict := fs.Bool("strict", false, "exit with status 3 when there are warnings")
	fs.Usage = func() {
		fmt.Fprintln(errOut, "Usage: kvgate adapt [flags] FILE...   (Kubernetes manifests → kvgate config on stdout, warnings on stderr)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{2, err}
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return &exitError{2, errors.New("adapt needs at least one manifest FILE")}
	}
	r, err := adapt.Load(opts, fs.Args()...)
	if r != nil {
		printWarnings(errOut, r.Warnings)
	}
	if err != nil {
		fmt.Fprintln(errOut, err)
		return &exitError{1, errors.New("the manifests could not be adapted")}
	}
	if _, err := out.Write(r.YAML); err != nil {
		return err
	}
	if *strict && len(r.Warnings) > 0 {
		return &exitError{3, fmt.Errorf("%d warnings (--strict)", len(r.Warnings))}
	}
	return nil
}

func printWarnings(w io.Writer, warns []adapt.Warning) {
	for _, x := range warns {
		fmt.Fprintln(w, "warning:", x)
	}
}

// manifestOpts are the adapt flags of `run` and `validate`, which accept
// manifests as --config (see addManifestFlags and loadAny).
var manifestOpts adapt.Options

func addManifestFlags(fs *flag.FlagSet) {
	manifestOpts = adapt.Options{}
	adapt.RegisterFlags(fs, &manifestOpts)
}

// loadAny loads a native config or adapts manifests, printing warnings to warnOut.
func loadAny(path string, warnOut io.Writer) (*config.Config, error) {
	c, warns, err := adapt.LoadAny(path, manifestOpts)
	printWarnings(warnOut, warns)
	return c, err
}
