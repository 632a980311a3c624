#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind's callgrind: a figure that
# does not move with whatever else runs on the machine (unlike CPU time), so two
# builds can be compared on a busy shared machine. User-space instructions only:
# the kernel's share of each syscall is not counted (see README.md).
#
# One nginx backend serves a 1 KiB file; kvgate (GOMAXPROCS=1, access log off
# unless ACCESSLOG says otherwise) runs under callgrind; rateload sends WARMUP
# requests, the counters are zeroed, REQUESTS more are sent at RATE req/s over
# CONNS keep-alive connections, and the counters are dumped.
#
# Environment (all optional):
#   REQUESTS=2000 WARMUP=600 RATE=200 CONNS=16
#   ACCESSLOG=off   the config's accessLog.path: off, stdout (the default config's), or a file
#   KVGATE_BIN=path measure this binary instead of building ./cmd/kvgate
#   TOP=30          functions listed, by their own (exclusive) instructions
#   OUT=dir         keep the callgrind output there (default: a temporary directory, removed)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
REQUESTS=${REQUESTS:-2000}
WARMUP=${WARMUP:-600}
RATE=${RATE:-200}
CONNS=${CONNS:-16}
ACCESSLOG=${ACCESSLOG:-off}
TOP=${TOP:-30}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
NICE=0

log() { printf '[callgrind] %s\n' "$*" >&2; }
source "$HERE/../lib.sh"
for t in valgrind callgrind_control callgrind_annotate nginx curl taskset ss; do
	command -v "$t" >/dev/null || die "$t is missing (apt-get install valgrind nginx curl)"
done
[[ $REQUESTS =~ ^[1-9][0-9]*$ && $RATE =~ ^[1-9][0-9]*$ && $WARMUP =~ ^[0-9]+$ ]] || die "REQUESTS, RATE and WARMUP must be whole numbers"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kvgate-callgrind.XXXXXX")
chmod 755 "$WORK"
PIDS=()
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP
set_priority

mkdir -p "$WORK/bin"
if [[ -z ${KVGATE_BIN:-} ]]; then
	(cd "$ROOT" && go build -o "$WORK/bin/kvgate" ./cmd/kvgate) || die "go build ./cmd/kvgate failed"
	KVGATE_BIN=$WORK/bin/kvgate
fi
(cd "$ROOT" && go build -o "$WORK/bin/rateload" ./benchmarks/cpu/rateload) || die "go build rateload failed"

BPORT=$(free_port)
write_backend "$WORK/backend" "$BPORT"
start_bg "$WORK/backend/log" "${LOAD_PFX[@]}" nginx -p "$WORK/backend" -e "$WORK/backend/error.log" -c "$WORK/backend/nginx.conf" -g 'daemon off;'
wait_url "http://127.0.0.1:$BPORT/1k.bin" "$STARTED_PID" || die "backend nginx did not start"

PORT=$(free_port)
APORT=$(free_port)
cat >"$WORK/kvgate.yaml" <<CONF
admin: {address: 127.0.0.1:$APORT}
accessLog: {path: "$ACCESSLOG"}
listeners:
  - {name: bench, address: 127.0.0.1:$PORT, protocols: [http1]}
routes:
  - {name: all, backends: [{pool: backend}]}
pools:
  - {name: backend, endpoints: ["127.0.0.1:$BPORT"]}
CONF
# Go's asynchronous preemption signals trip callgrind's signal bookkeeping;
# with it off the program runs unchanged otherwise (cooperative preemption).
start_bg "$WORK/kvgate.log" env GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 "${PROXY_PFX[@]}" \
	valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" "$KVGATE_BIN" run --config "$WORK/kvgate.yaml"
VG=$STARTED_PID
for _ in $(seq 600); do
	curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/1k.bin" && break
	alive "$VG" || { tail -n 30 "$WORK/kvgate.log" >&2; die "kvgate under valgrind died"; }
	sleep 0.2
done
load() { "${LOAD_PFX[@]}" "$WORK/bin/rateload" -url "http://127.0.0.1:$PORT/1k.bin" -rate "$RATE" -c "$CONNS" -d "$1"; }
secs() { awk -v n="$1" -v r="$RATE" 'BEGIN { printf "%.3fs", n / r }'; }
if ((WARMUP > 0)); then load "$(secs "$WARMUP")" >/dev/null; fi
callgrind_control -z "$VG" >/dev/null
js=$(load "$(secs "$REQUESTS")")
callgrind_control -d "$VG" >/dev/null
ok=$(jq -r .ok <<<"$js")
[[ $ok -gt 0 ]] || die "no request succeeded: $js"
out=$(ls "$WORK"/callgrind.out.* | tail -n 1)
total=$(callgrind_annotate --auto=no "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !t {gsub(",", "", $1); t = $1} END {print t}')
echo "requests: $ok of $(jq -r .requests <<<"$js") at $RATE req/s over $CONNS connections (access log: $ACCESSLOG)"
echo "instructions per request: $((total / ok)) (total $total)"
echo
echo "Top $TOP functions by their own instructions per request:"
callgrind_annotate --auto=no --threshold=100 "$out" 2>/dev/null |
	awk -v n="$ok" -v top="$TOP" '/file:function/ {f = 1; next} f && $1 ~ /^[0-9,]+$/ && c < top {
		x = $1; gsub(",", "", x); fn = $0; sub(/^[^:]*:/, "", fn); sub(/ \[.*/, "", fn)
		if (fn ~ /^(runtime\.mstart|runtime\/cgo|threadentry|start_thread|clone)/) next
		printf "%8d  %s\n", x / n, fn; c++ }'
if [[ -n ${OUT:-} ]]; then mkdir -p "$OUT" && cp "$out" "$OUT/" && log "callgrind output kept in $OUT"; fi
