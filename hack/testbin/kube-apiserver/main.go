// Command kube-apiserver is the real Kubernetes API server, built from its Go
// module so that kvgate's Kubernetes tests run against the real thing
// without downloading release binaries.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
