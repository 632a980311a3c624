#!/usr/bin/env bash
# HTTP/2 conformance of kvgate's TLS listener, checked with h2spec.
#
#   benchmarks/conformance/h2spec.sh            # h2spec only (about a minute)
#   benchmarks/conformance/h2spec.sh --testssl  # also testssl.sh against the same listener (slow)
#
# Builds kvgate and a tiny backend, starts kvgate with a TLS listener speaking
# h2 and http/1.1 in front of the backend, runs every h2spec case (generic,
# http2 and hpack), and compares the failures with h2spec-known-failures.txt
# (one case id per line with the reason after '#'). It fails on a failure not
# in that list, and names known failures that now pass so the list can shrink.
#
# Environment: H2SPEC_VERSION (default v2.2.1+incompatible, the last tagged release;
# "latest" also works), KVGATE_PORT (18443), BACKEND_PORT (18080),
# ADMIN_PORT (19901), WORKDIR (a temporary directory, removed unless KEEP=1).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

run_testssl=0
for a in "$@"; do
  case "$a" in
    --testssl) run_testssl=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "h2spec.sh: unknown argument $a (try --help)" >&2; exit 2 ;;
  esac
done

H2SPEC_VERSION="${H2SPEC_VERSION:-v2.2.1+incompatible}"
KVGATE_PORT="${KVGATE_PORT:-18443}"
BACKEND_PORT="${BACKEND_PORT:-18080}"
ADMIN_PORT="${ADMIN_PORT:-19901}"
work="${WORKDIR:-$(mktemp -d)}"
mkdir -p "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" != 1 ] && [ -z "${WORKDIR:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

gobin="$(go env GOPATH)/bin"
export PATH="$PATH:$gobin"
if ! command -v h2spec >/dev/null; then
  echo "== installing h2spec $H2SPEC_VERSION"
  go install "github.com/summerwind/h2spec/cmd/h2spec@$H2SPEC_VERSION"
fi

echo "== building kvgate and the backend into $work"
go build -o "$work/kvgate" ./cmd/kvgate
go build -o "$work/backend" ./benchmarks/conformance/backend
"$work/backend" -cert "$work"

cat >"$work/kvgate.yaml" <<YAML
admin: {address: "127.0.0.1:$ADMIN_PORT"}
accessLog: {path: "off"}
listeners:
  - name: tls
    address: "127.0.0.1:$KVGATE_PORT"
    protocols: [http1, http2]
    tls: {certFile: "$work/tls.crt", keyFile: "$work/tls.key"}
routes:
  - {name: all, backends: [{pool: backend}]}
pools:
  - {name: backend, endpoints: ["127.0.0.1:$BACKEND_PORT"]}
YAML

"$work/backend" -addr "127.0.0.1:$BACKEND_PORT" 2>"$work/backend.log" &
pids+=($!)
"$work/kvgate" run --config "$work/kvgate.yaml" --log-level warn 2>"$work/kvgate.log" >"$work/kvgate.out" &
pids+=($!)

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "h2spec.sh: nothing listens on 127.0.0.1:$1; see $work/*.log" >&2
  return 1
}
wait_port "$BACKEND_PORT"
wait_port "$KVGATE_PORT"

echo "== h2spec $(h2spec --version 2>/dev/null | head -1) against 127.0.0.1:$KVGATE_PORT (TLS, ALPN h2)"
set +e
h2spec -t -k -h 127.0.0.1 -p "$KVGATE_PORT" -o 5 -j "$work/h2spec.xml" >"$work/h2spec.txt" 2>&1
set -e
tail -n 3 "$work/h2spec.txt"

# Failed case ids from the JUnit report: "<package>/<case number>", e.g. http2/6.5.3/1.
failed="$(go run ./benchmarks/conformance/junitfail "$work/h2spec.xml")"
known="$(sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$here/h2spec-known-failures.txt" | grep -v '^$' || true)"

new="$(comm -23 <(printf '%s\n' "$failed" | grep -v '^$' | sort -u) <(printf '%s\n' "$known" | sort -u))"
fixed="$(comm -13 <(printf '%s\n' "$failed" | grep -v '^$' | sort -u) <(printf '%s\n' "$known" | sort -u))"
if [ -n "$fixed" ]; then
  echo "== known failures that now pass (remove them from h2spec-known-failures.txt):"
  printf '  %s\n' $fixed
fi
status=0
if [ -n "$new" ]; then
  echo "== NEW h2spec failures:"
  printf '  %s\n' $new
  echo "details: $work/h2spec.txt (run with KEEP=1 to keep it)"
  status=1
else
  echo "== h2spec: no failures beyond the known list ($(printf '%s\n' "$known" | grep -c . || true) known)"
fi

if [ "$run_testssl" = 1 ]; then
  tssl="$(command -v testssl || command -v testssl.sh || true)"
  if [ -z "$tssl" ]; then
    echo "h2spec.sh: --testssl needs testssl.sh (Debian/Ubuntu: apt-get install testssl.sh)" >&2
    exit 2
  fi
  echo "== testssl.sh against 127.0.0.1:$KVGATE_PORT"
  set +e
  "$tssl" --quiet --color 0 --severity MEDIUM --jsonfile "$work/testssl.json" "127.0.0.1:$KVGATE_PORT" >"$work/testssl.txt" 2>&1
  set -e
  # Findings of severity MEDIUM or worse, minus the ones a self-signed test certificate causes.
  if ! go run ./benchmarks/conformance/testsslfind "$work/testssl.json"; then
    echo "== testssl.sh: findings above (MEDIUM or worse); details in $work/testssl.txt (KEEP=1 keeps it)"
    status=1
  else
    echo "== testssl.sh: no MEDIUM or worse findings beyond the self-signed certificate"
  fi
fi
exit $status
