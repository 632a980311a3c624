// Package testbin builds the real kube-apiserver and etcd that kvgate's
// Kubernetes tests run against. It is its own module so that
// k8s.io/kubernetes never enters kvgate's go.mod; build.sh builds and caches
// the binaries.
package testbin
