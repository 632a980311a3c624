//go:build nokube

package main

import (
	"context"
	"errors"
	"io"
	"runtime/debug"
	"strings"
	"testing"
)

// A nokube build answers every Kubernetes flag with exit status 2 and how
// to get a build that has them, and serves nothing.
func TestNoKubeRefusesKubernetesFlags(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--kubernetes"},
		{"run", "--kubernetes", "--admin", "127.0.0.1:0"},
		{"run", "--kubeconfig", "x"},
		{"run", "--leader-elect=false"},
	} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), "without Kubernetes support") {
			t.Errorf("%q: got %v, want exit 2 saying the build has no Kubernetes support", args, err)
		}
	}
}

// The point of the build: nothing of client-go or the API types is
// linked. An import of package kube from any file without the build tag
// would put them back and fail this.
func TestNoKubeLinksNoKubernetesModules(t *testing.T) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("no build info")
	}
	for _, d := range bi.Deps {
		if strings.HasPrefix(d.Path, "k8s.io/") || strings.HasPrefix(d.Path, "sigs.k8s.io/") {
			t.Errorf("module %s is linked into the nokube build", d.Path)
		}
	}
}
