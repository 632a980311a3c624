#!/usr/bin/env bash
# Runs run.sh --cluster --short against a pretend cluster (testdata/fake/kubectl) for the data
# planes "none" and "kvgate": every step of the kit's own logic (node choice, rendering, the
# timed kubelet scrapes, the load through `kubectl exec`, collect, report, --check, removal)
# runs, with the load going to a local `meshbench serve` and `kvgate sim`. No cluster, no
# internet; about a minute. Istio's and Linkerd's installs are not exercised here.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/kvgate-mesh-fake.XXXXXX")
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"' EXIT
fail() { echo "test-cluster.sh: FAIL: $*" >&2; exit 1; }

(cd "$ROOT" && go build -o "$W/meshbench" ./benchmarks/mesh/meshbench && go build -o "$W/kvgate" ./cmd/kvgate)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sp=$(port) mp=$(port)
"$W/meshbench" serve --addr "127.0.0.1:$sp" >"$W/serve.log" 2>&1 & pids+=($!)
"$W/kvgate" sim --addr "127.0.0.1:$mp" --time-scale 0.1 >"$W/sim.log" 2>&1 & pids+=($!)
for i in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$sp/" && curl -sf -o /dev/null "http://127.0.0.1:$mp/metrics" && break; sleep 0.1; done

export FAKE_LOG=$W/kubectl.log FAKE_SERVER=127.0.0.1:$sp FAKE_SIM=127.0.0.1:$mp FAKE_MESHBENCH=$W/meshbench
KUBECTL=$HERE/testdata/fake/kubectl MESH_IMAGE=localhost/kvgate-mesh:test DATA_PLANES="none kvgate" \
	LINKERD_RATES=200 SHORT_DURATION=3s OUT=$W/out "$HERE/run.sh" --cluster --short >"$W/run.log" 2>&1 ||
	{ cat "$W/run.log" >&2; fail "run.sh --cluster --short failed"; }

rows=$(grep -c '^| ' "$W/out/results.md")
[[ $rows == 7 ]] || { cat "$W/out/results.md"; fail "want a header and 6 rows in results.md, got $rows lines"; }
[[ -s $W/out/results.png ]] || fail "no results.png"
kv=$(grep '"dataPlane":"kvgate node proxy","workload":"istio-1k"' "$W/out/rows.jsonl") || fail "no kvgate istio-1k row"
grep -q '"cpuSource":"kubelet /metrics/resource"' <<<"$kv" || fail "the kvgate row's CPU is not from the kubelet scrapes: $kv"
grep -q '"proxies":2' <<<"$kv" || fail "the kvgate row does not count the node proxies on both nodes: $kv"
grep -q '"addedP99Ms"' <<<"$kv" || fail "the kvgate row has no added latency (no-mesh baseline): $kv"
grep -q 'endpoints: \["127.0.0.1:15008"\]' "$FAKE_LOG.applied" || fail "kvgate-node.yaml was not rendered with the server node's address"
! grep -q '\${' "$FAKE_LOG.applied" || fail "a placeholder was applied unrendered"
grep -q 'kubectl delete namespace kvgate-mesh-kvgate' "$FAKE_LOG" || fail "the kvgate namespace was not removed"
grep -q 'kubectl delete namespace kvgate-mesh-none' "$FAKE_LOG" || fail "the none namespace was not removed"
echo "test-cluster.sh: ok ($(grep -c . "$W/out/rows.jsonl") rows; kubectl called $(grep -c . "$FAKE_LOG") times)"
