#!/usr/bin/env bash
# Builds the real kube-apiserver and etcd from their Go modules (this module)
# and caches them outside the clone, keyed by Kubernetes and Go versions.
# Prints the directory holding the binaries. Cold: about 15 minutes on 2
# cores; warm: instant. Tests find the directory in KVGATE_TESTBIN.
set -euo pipefail
cd "$(dirname "$0")"
k8s=v1.37.2
gov=$(go env GOVERSION)
dir=${KVGATE_TESTBIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kvgate-testbin}/$k8s-$gov
if [ -x "$dir/kube-apiserver" ] && [ -x "$dir/etcd" ]; then
  echo "$dir"
  exit 0
fi
mkdir -p "$dir.tmp"
v=k8s.io/component-base/version
c=k8s.io/client-go/pkg/version
ld="-s -w -X $v.gitVersion=$k8s -X $v.gitMajor=1 -X $v.gitMinor=37 -X $c.gitVersion=$k8s -X $c.gitMajor=1 -X $c.gitMinor=37"
CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$dir.tmp/" ./kube-apiserver ./etcd >&2
rm -rf "$dir"
mv "$dir.tmp" "$dir"
echo "$dir"
