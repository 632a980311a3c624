//go:build nokube

package main

import (
	"context"
	"flag"
	"log/slog"
)

// This is run's Kubernetes mode in a build with -tags nokube (a drop-in
// for machines that never talk to a cluster): the flags still parse, so
// that a command line meant for the standard build gets a clear answer,
// and using any of them is refused.

// errNoKube is the answer to a Kubernetes flag in this build.
const errNoKube = "this kvgate was built without Kubernetes support (go build -tags nokube): use the standard build (make build) or the container image"

func (k *kubeOpts) register(fs *flag.FlagSet) {
	const na = "not in this build (-tags nokube)"
	fs.BoolVar(&k.enabled, "kubernetes", false, na)
	fs.StringVar(&k.kubeconfig, "kubeconfig", "", na)
	fs.StringVar(&k.controller, "controller-name", "", na)
	fs.BoolVar(&k.elect, "leader-elect", true, na)
}

// check refuses every Kubernetes flag.
func (k *kubeOpts) check(fs *flag.FlagSet) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		for _, name := range kubeFlags {
			if err == nil && f.Name == name {
				err = usageError("run: --%s: %s", f.Name, errNoKube)
			}
		}
	})
	return err
}

// runKube is never reached: check refused --kubernetes.
func runKube(context.Context, *serveOpts, *slog.Logger) error {
	return usageError("run: --kubernetes: %s", errNoKube)
}
