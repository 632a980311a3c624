# Shared by build.sh and smoke.sh (sourced, not run).
#
# Both tools must use the same container storage, so the storage driver is
# chosen here once: $STORAGE_DRIVER when set; otherwise the driver of an
# existing store; otherwise vfs, which works everywhere (no overlay or fuse
# needed, at the cost of disk space: the image is one small layer, so that
# cost is a few tens of MB).

# Container storage driver flags for buildah and podman.
storage_flags() {
  local driver="${STORAGE_DRIVER:-}" store=/var/lib/containers/storage d
  if [ "$(id -u)" != 0 ]; then store="${XDG_DATA_HOME:-$HOME/.local/share}/containers/storage"; fi
  if [ -z "$driver" ]; then
    # An existing store remembers its driver; opening it with another fails.
    for d in overlay vfs btrfs zfs; do
      if [ -d "$store/$d-images" ]; then driver="$d"; break; fi
    done
  fi
  echo "--storage-driver=${driver:-vfs}"
}

# need CMD...: fail with a hint when a tool is missing.
need() {
  local c
  for c in "$@"; do
    if ! command -v "$c" >/dev/null 2>&1; then
      echo "$(basename "$0"): $c is missing (Debian/Ubuntu: apt-get install podman buildah runc curl)" >&2
      exit 2
    fi
  done
}
