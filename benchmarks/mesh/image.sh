#!/usr/bin/env bash
# Builds the one image run.sh --cluster needs: the kvgate image (deploy/image/build.sh: kvgate,
# from scratch, nonroot) with the kit's meshbench added at /usr/local/bin/meshbench. The node
# proxy, the simulator (`kvgate sim`), the test server and the load client all run from it.
#
#   benchmarks/mesh/image.sh                                   # localhost/kvgate-mesh:<git describe>
#   MESH_IMAGE=registry.example/kvgate-mesh:1 PUSH=1 benchmarks/mesh/image.sh   # and push it
#   ARCH=arm64 benchmarks/mesh/image.sh                        # for arm64 nodes
#
# For kind: `kind load image-archive` an archive written with ARCHIVE=/tmp/kvgate-mesh.tar.
# Needs buildah and go, as deploy/image/build.sh does.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
. deploy/image/lib.sh
need buildah go
ARCH="${ARCH:-$(go env GOARCH)}"
VERSION="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
MESH_IMAGE="${MESH_IMAGE:-localhost/kvgate-mesh:$VERSION}"
base="localhost/kvgate:mesh-base-$VERSION"
bh=(timeout 300 buildah "$(storage_flags)")
work="$(mktemp -d)"
ctr=""
cleanup() {
  if [ -n "$ctr" ]; then "${bh[@]}" rm "$ctr" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

IMAGE="$base" ARCH="$ARCH" VERSION="$VERSION" ARCHIVE="" deploy/image/build.sh
echo "== mesh image: meshbench for linux/$ARCH"
CGO_ENABLED=0 GOOS=linux GOARCH="$ARCH" timeout 900 go build -trimpath -ldflags "-s -w" -o "$work/meshbench" ./benchmarks/mesh/meshbench
ctr="$("${bh[@]}" from "$base")"
"${bh[@]}" copy --quiet --chown 0:0 --chmod 0755 "$ctr" "$work/meshbench" /usr/local/bin/meshbench >/dev/null
"${bh[@]}" config --label org.opencontainers.image.title=kvgate-mesh \
  --label org.opencontainers.image.description="kvgate with the mesh benchmark kit's meshbench" "$ctr"
"${bh[@]}" commit --quiet --format oci --rm "$ctr" "$MESH_IMAGE" >/dev/null
ctr=""
"${bh[@]}" rmi "$base" >/dev/null 2>&1 || true
if [ -n "${ARCHIVE:-}" ]; then
  rm -f "$ARCHIVE"
  "${bh[@]}" push --quiet "$MESH_IMAGE" "oci-archive:$ARCHIVE:$MESH_IMAGE"
  echo "== mesh image: wrote $ARCHIVE"
fi
if [ "${PUSH:-0}" = 1 ]; then
  "${bh[@]}" push --quiet "$MESH_IMAGE" "docker://$MESH_IMAGE"
  echo "== mesh image: pushed $MESH_IMAGE"
fi
"${bh[@]}" images --format '{{.Name}}:{{.Tag}} {{.ID}} {{.Size}}' "$MESH_IMAGE"
echo "run: MESH_IMAGE=$MESH_IMAGE benchmarks/mesh/run.sh --cluster"
