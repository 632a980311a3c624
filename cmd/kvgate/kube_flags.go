package main

// kubeOpts are the flags of run's Kubernetes mode: registered and checked
// by kube.go, or refused by kube_off.go in a build with -tags nokube.
type kubeOpts struct {
	enabled    bool
	kubeconfig string
	controller string
	elect      bool
}

// kubeFlags are listed under "Kubernetes" in run's help.
var kubeFlags = []string{"kubernetes", "kubeconfig", "controller-name", "leader-elect"}
