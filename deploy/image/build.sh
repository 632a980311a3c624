#!/usr/bin/env bash
# Builds the kvgate OCI image with buildah, without a Docker engine and
# without pulling a base image: the image starts from scratch and holds the
# static binary from `make build`, passwd/group entries for the nonroot user
# (65532, as in distroless), the host's CA bundle, an empty /tmp and the
# quickstart config at /etc/kvgate/kvgate.yaml (mount your own over
# /etc/kvgate).
#
#   deploy/image/build.sh                          # localhost/kvgate:<git describe>, also tagged :dev
#   IMAGE=registry.example/kvgate:1.2 deploy/image/build.sh
#   ARCH=arm64 deploy/image/build.sh               # for arm64 nodes (cross-compiled)
#   ARCHIVE=/tmp/kvgate.oci.tar deploy/image/build.sh   # also write an oci-archive
#
# Environment: IMAGE, ARCH (default: this machine's GOARCH), ARCHIVE,
# STORAGE_DRIVER (see lib.sh), VERSION (default git describe). The image is
# committed with the last commit's time, so two builds of one commit get the
# same image ID.
# Needs buildah and go; runs as root (or in `buildah unshare`).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
. "$here/lib.sh"
need buildah go

ARCH="${ARCH:-$(go env GOARCH)}"
VERSION="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
IMAGE="${IMAGE:-localhost/kvgate:$VERSION}"
ARCHIVE="${ARCHIVE:-}"
epoch="$(git log -1 --format=%ct 2>/dev/null || date +%s)"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
# buildah, bounded: no step of this small image takes minutes.
bh=(timeout 300 buildah "$(storage_flags)")

work="$(mktemp -d)"
ctr=""
cleanup() {
  if [ -n "$ctr" ]; then "${bh[@]}" rm "$ctr" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# make build sets CGO_ENABLED=0; GOOS/GOARCH pass through the environment.
# A cross build goes to bin/linux-ARCH/ so bin/kvgate stays this machine's.
bin=bin/kvgate
if [ "$ARCH" != "$(go env GOARCH)" ] || [ "$(go env GOOS)" != linux ]; then bin="bin/linux-$ARCH/kvgate"; fi
echo "== build: static kvgate for linux/$ARCH ($VERSION) into $bin"
GOOS=linux GOARCH="$ARCH" timeout 900 make --no-print-directory build VERSION="$VERSION" OUT="$bin"
if ! go version -m "$bin" | grep -q 'CGO_ENABLED=0'; then
  echo "build.sh: $bin is not a static (CGO_ENABLED=0) build" >&2
  exit 1
fi

echo "== build: root file system"
rootfs="$work/rootfs"
install -d -m 0755 "$rootfs/usr/local/bin" "$rootfs/etc/kvgate" "$rootfs/etc/ssl/certs"
install -d -m 1777 "$rootfs/tmp"
install -d -m 0700 "$work/home"   # becomes /home/nonroot, owned by 65532
install -m 0755 "$bin" "$rootfs/usr/local/bin/kvgate"
install -m 0644 examples/quickstart.yaml "$rootfs/etc/kvgate/kvgate.yaml"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
  'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$rootfs/etc/passwd"
printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' >"$rootfs/etc/group"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"
# Public CA roots, for upstreams and OTLP collectors with public certificates.
if [ -r /etc/ssl/certs/ca-certificates.crt ]; then
  install -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
else
  echo "build.sh: warning: no /etc/ssl/certs/ca-certificates.crt here; the image has no public CA roots" >&2
fi

echo "== build: image $IMAGE"
ctr="$("${bh[@]}" from scratch)"
"${bh[@]}" copy --quiet --chown 0:0 "$ctr" "$rootfs" / >/dev/null
"${bh[@]}" copy --quiet --chown 65532:65532 "$ctr" "$work/home" /home/nonroot >/dev/null
"${bh[@]}" config \
  --os linux --arch "$ARCH" \
  --user 65532:65532 \
  --workingdir / \
  --entrypoint '["/usr/local/bin/kvgate"]' \
  --cmd '["run", "--config", "/etc/kvgate/kvgate.yaml"]' \
  --port 8080/tcp --port 8443/tcp --port 8443/udp --port 9901/tcp \
  --stop-signal SIGTERM \
  --label org.opencontainers.image.title=kvgate \
  --label org.opencontainers.image.description="inference-aware L7 reverse proxy" \
  --label org.opencontainers.image.source=https://github.com/kvgate/kvgate \
  --label org.opencontainers.image.version="$VERSION" \
  --label org.opencontainers.image.revision="$revision" \
  "$ctr"
"${bh[@]}" commit --quiet --format oci --timestamp "$epoch" --rm "$ctr" "$IMAGE" >/dev/null
ctr=""
if [ "$IMAGE" = "localhost/kvgate:$VERSION" ]; then
  "${bh[@]}" tag "$IMAGE" localhost/kvgate:dev
fi
if [ -n "$ARCHIVE" ]; then
  rm -f "$ARCHIVE"
  "${bh[@]}" push --quiet "$IMAGE" "oci-archive:$ARCHIVE:$IMAGE"
  echo "== build: wrote $ARCHIVE"
fi
"${bh[@]}" images --format '{{.Name}}:{{.Tag}} {{.ID}} {{.Size}}' "$IMAGE"
