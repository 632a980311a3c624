#!/usr/bin/env bash
# TLS handshake cost of kvgate against HAProxy's TLS termination on one machine, in one run.
#
# Both proxies serve the same throwaway ECDSA P-256 certificate (made with openssl in a temp
# dir), run with one thread pinned to one core, and forward to the same nginx static backend
# (1 KiB file, keep-alive upstream). The load client hsload (beside this script) opens a new
# TCP connection per request, does a TLS 1.3 handshake, sends one GET with Connection: close
# and reads the whole response. Two modes:
#   full     no session cache: certificate + CertificateVerify signature + ECDHE every time,
#   resumed  one shared session cache: PSK from a session ticket (psk_dhe_ke, still ECDHE),
#   plain    no TLS at all, to a second plaintext port of the same proxy process: the baseline
#            cost of accepting a connection and proxying one request, so full - plain is the
#            TLS share.
# Per proxy and mode it records handshakes/s, proxy CPU-ms per handshake (utime+stime from
# /proc over the whole process tree, so the proxied request is included), the share of
# handshakes that resumed, client latency p50/p99, and peak RSS. Rounds interleave the proxies
# (haproxy, kvgate, haproxy, kvgate, ...) so drifting background load hits both alike.
# See README.md beside this file for the method and its limits.
#
# Environment (all optional):
#   DURATION=10s  length of each measured run (s suffix)
#   RUNS=3        rounds; the table shows the median of each column
#   CONNS=16      concurrent hsload clients (each one connection at a time)
#   MODES="plain full resumed"  which modes to measure
#   CURVE=x25519  the one key-exchange group the client offers (x25519 | p256 | x25519mlkem768)
#   PROXIES="haproxy kvgate"   which proxies to measure
#   PROXY_CPU=0 LOAD_CPU=1     cores for the proxies and for backend + load client
#   NICE=-20      niceness for this run's autogroup (root), as in benchmarks/overhead/run.sh
#   SKIP_INSTALL=1             never call apt-get
#   RESULTS=path  where to write the Markdown (default results.md beside this script)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

DURATION=${DURATION:-10s}
RUNS=${RUNS:-3}
CONNS=${CONNS:-16}
CURVE=${CURVE:-x25519}
MODES=${MODES:-"plain full resumed"}
PROXIES=${PROXIES:-"haproxy kvgate"}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SKIP_INSTALL=${SKIP_INSTALL:-0}
NICE=${NICE:-0}
RESULTS=${RESULTS:-$HERE/results.md}
INVOCATION="DURATION=$DURATION RUNS=$RUNS CONNS=$CONNS CURVE=$CURVE MODES=\"$MODES\"$([[ $NICE == 0 ]] || echo " NICE=$NICE") PROXIES=\"$PROXIES\" benchmarks/tls/run.sh"

log() { printf '[tls] %s\n' "$*" >&2; }
# Shared helpers from benchmarks/lib.sh: die, alive, stop_pid, cleanup, free_port, tree_pids, cpu_ticks, hwm_kib, start_bg, wait_url, median, loadavg, write_backend, haproxy_defaults, med, fmt, busy, set_priority, install_missing.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$RUNS'"
[[ $CONNS =~ ^[1-9][0-9]*$ ]] || die "CONNS must be a positive integer, got '$CONNS'"
[[ $NICE =~ ^-?[0-9]+$ ]] || die "NICE must be an integer, got '$NICE'"
[[ $DURATION =~ ^[1-9][0-9]*s$ ]] || die "DURATION must be whole seconds like 10s, got '$DURATION'"
LOAD_TIMEOUT=$((${DURATION%s} + 30))

# ---------------------------------------------------------------- cleanup

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kvgate-tls.XXXXXX")
chmod 755 "$WORK" # nginx workers run unprivileged and must read the backend file
PIDS=()

trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

set_priority

# ---------------------------------------------------------------- install

ensure_tools() { install_missing haproxy nginx openssl curl jq taskset ss; }

# ---------------------------------------------------------------- configs

make_cert() { # dir: ECDSA P-256 self-signed certificate for 127.0.0.1 / localhost
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
		-keyout "$1/key.pem" -out "$1/cert.pem" 2>/dev/null
	cat "$1/cert.pem" "$1/key.pem" >"$1/haproxy.pem"
	chmod 644 "$1"/*.pem
}

write_haproxy() { # dir port backendport plainport
	mkdir -p "$1"
	{
		haproxy_defaults always
		cat <<CONF
frontend bench
	bind 127.0.0.1:$2 ssl crt $CERTS/haproxy.pem alpn http/1.1 ssl-min-ver TLSv1.3
	bind 127.0.0.1:$4
	default_backend backend
backend backend
	server b1 127.0.0.1:$3
CONF
	} >"$1/haproxy.cfg"
}

write_kvgate() { # dir port adminport backendport plainport
	mkdir -p "$1"
	cat >"$1/kvgate.yaml" <<CONF
admin: {address: 127.0.0.1:$3}
accessLog: {path: "off"}
listeners:
  - name: bench
    address: 127.0.0.1:$2
    protocols: [http1]
    tls: {certFile: $CERTS/cert.pem, keyFile: $CERTS/key.pem}
  - {name: plain, address: 127.0.0.1:$5, protocols: [http1]}
routes:
  - {name: all, backends: [{pool: backend}]}
pools:
  - {name: backend, endpoints: ["127.0.0.1:$4"]}
CONF
}

# ---------------------------------------------------------------- proxies

declare -A PID_OF URL_OF PLAIN_OF
ACTIVE=()

start_proxy() { # name
	local name=$1 dir=$WORK/$1 port aport pport
	port=$(free_port)
	pport=$(free_port)
	case $name in
	haproxy)
		write_haproxy "$dir" "$port" "$BPORT" "$pport"
		start_bg "$dir/log" "${PROXY_PFX[@]}" haproxy -db -f "$dir/haproxy.cfg"
		;;
	kvgate)
		aport=$(free_port)
		write_kvgate "$dir" "$port" "$aport" "$BPORT" "$pport"
		start_bg "$dir/log" env GOMAXPROCS=1 "${PROXY_PFX[@]}" "$WORK/bin/kvgate" run --config "$dir/kvgate.yaml"
		;;
	*) die "unknown proxy $name (haproxy | kvgate)" ;;
	esac
	URL_OF[$name]="https://127.0.0.1:$port/1k.bin"
	PLAIN_OF[$name]="http://127.0.0.1:$pport/1k.bin"
	PID_OF[$name]=$STARTED_PID
	if ! wait_url "${URL_OF[$name]}" "$STARTED_PID" -k; then
		tail -n 20 "$dir/log" >&2 || true
		die "$name did not serve ${URL_OF[$name]} within 15s (log tail above)"
	fi
	[[ $(curl -sk "${URL_OF[$name]}" | wc -c) == 1024 ]] || die "$name does not return the 1024-byte file"
	[[ $(curl -s "${PLAIN_OF[$name]}" | wc -c) == 1024 ]] || die "$name does not return the 1024-byte file on ${PLAIN_OF[$name]}"
	log "$name: pid $STARTED_PID on ${URL_OF[$name]}"
	ACTIVE+=("$name")
}

# ---------------------------------------------------------------- measurement

declare -A S_RATE S_CPU S_CCPU S_RES S_P50 S_P99 S_ERR S_LOAD

hsload() { # url mode seconds -> JSON on stdout
	local args=(-url "$1" -c "$CONNS" -d "$3" -curve "$CURVE")
	case $2 in resumed) args+=(-resume) ;; plain) args+=(-plain) ;; esac
	"${LOAD_PFX[@]}" timeout "$LOAD_TIMEOUT" "$WORK/bin/hsload" "${args[@]}"
}

measure() { # name mode run
	local name=$1 mode=$2 pid=${PID_OF[$1]} t0 t1 js hs key="$1/$2"
	t0=$(cpu_ticks "$pid")
	local url=${URL_OF[$name]}
	[[ $mode != plain ]] || url=${PLAIN_OF[$name]}
	js=$(hsload "$url" "$mode" "$DURATION") || { log "$key: hsload failed"; js='{}'; }
	t1=$(cpu_ticks "$pid")
	alive "$pid" || { tail -n 30 "$WORK/$name/log" >&2; die "$name died during $mode run $3"; }
	printf '%s %s %s\n' "$key" "$3" "$js" >>"$WORK/hsload.log"
	hs=$(jq -r '.handshakes // 0' <<<"$js")
	S_RATE[$key]+="$(jq -r '.perSecond // "-"' <<<"$js") "
	S_CPU[$key]+="$(awk -v t=$((t1 - t0)) -v n="$hs" -v hz="$CLK_TCK" 'BEGIN { if (n > 0) printf "%.4f", t / hz * 1000 / n; else print "-" }') "
	S_CCPU[$key]+="$(jq -r 'if .handshakes > 0 then .clientCpuMs / .handshakes * 10000 | round / 10000 else "-" end' <<<"$js") "
	S_RES[$key]+="$(jq -r 'if .handshakes > 0 then .resumed * 100 / .handshakes else "-" end' <<<"$js") "
	S_P50[$key]+="$(jq -r '.p50ms // "-"' <<<"$js") "
	S_P99[$key]+="$(jq -r '.p99ms // "-"' <<<"$js") "
	S_ERR[$key]+="$(jq -r '.errors // "-"' <<<"$js") "
	S_LOAD[$key]+="$(loadavg | cut -d' ' -f1),"
	log "$key run $3: $(jq -c '{handshakes, resumed, errors, perSecond: (.perSecond // 0 | floor), p99ms, firstError}' <<<"$js"), proxy CPU $((t1 - t0)) ticks, load $(loadavg)"
}

# ---------------------------------------------------------------- main

ensure_tools
mkdir -p "$WORK/bin" "$WORK/certs"
CERTS=$WORK/certs
(cd "$ROOT" && go build -o "$WORK/bin/kvgate" ./cmd/kvgate && go build -o "$WORK/bin/hsload" ./benchmarks/tls/hsload) >"$WORK/build.log" 2>&1 ||
	{ cat "$WORK/build.log" >&2; die "go build failed"; }
make_cert "$CERTS"

LOAD_BEFORE=$(loadavg)
log "load average before: $LOAD_BEFORE"

BPORT=$(free_port)
write_backend "$WORK/backend" "$BPORT"
start_bg "$WORK/backend/log" "${LOAD_PFX[@]}" nginx -p "$WORK/backend" -e "$WORK/backend/error.log" -c "$WORK/backend/nginx.conf" -g 'daemon off;'
wait_url "http://127.0.0.1:$BPORT/1k.bin" "$STARTED_PID" || die "backend nginx did not start"

for p in $PROXIES; do start_proxy "$p"; done
for p in "${ACTIVE[@]}"; do
	log "$p: warm-up 2s (full, then resumed)"
	hsload "${PLAIN_OF[$p]}" plain 1s >/dev/null || true
	hsload "${URL_OF[$p]}" full 1s >/dev/null || true
	hsload "${URL_OF[$p]}" resumed 1s >/dev/null || true
done
for run in $(seq "$RUNS"); do
	for mode in $MODES; do
		for p in "${ACTIVE[@]}"; do measure "$p" "$mode" "$run"; done
	done
done
LOAD_AFTER=$(loadavg)

# ---------------------------------------------------------------- report

declare -A RSS
for p in "${ACTIVE[@]}"; do RSS[$p]=$(awk -v k="$(hwm_kib "${PID_OF[$p]}")" 'BEGIN {printf "%.1f", k / 1024}'); done

diffms() { # proxy mode: median CPU-ms of mode minus that of plain
	awk -v a="$(med "${S_CPU[$1/$2]:-}")" -v b="$(med "${S_CPU[$1/plain]:-}")" 'BEGIN { if (a == "-" || b == "-" || a == "" || b == "") print "-"; else printf "%.4f", a - b }'
}
cap() { awk -v c="$1" 'BEGIN { if (c == "-" || c + 0 == 0) print "-"; else printf "%.0f", 1000 / c }'; }

report() {
	local p m k
	echo "# TLS handshake cost: kvgate against HAProxy"
	echo
	echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) by \`benchmarks/tls/run.sh\` (see README.md for the method)."
	echo
	echo "Command: \`$INVOCATION\`"
	echo
	echo "Each proxy pinned to core $PROXY_CPU with one thread (\`nbthread 1\` / \`GOMAXPROCS=1\`); backend nginx and hsload on core $LOAD_CPU."
	echo "New TCP connection + TLS 1.3 handshake (none in mode plain) + one GET of a 1 KiB file (Connection: close) per handshake; ECDSA P-256 certificate;"
	echo "client offers only $CURVE; $CONNS concurrent clients; $RUNS rounds of $DURATION per row, proxies interleaved, median shown."
	[[ $NICE == 0 ]] || echo "Scheduling: niceness $NICE on the run's $([[ $AUTOGROUP_SET == 1 ]] && echo autogroup || echo processes)."
	echo "Load average before / after: $LOAD_BEFORE / $LOAD_AFTER (other work shares this 2-core machine)."
	echo
	echo "| proxy | mode | handshakes/s | CPU-ms per handshake | CPU-ms per run | one-core capacity, handshakes/s | resumed % | p50 ms | p99 ms | errors (per run) | proxy core busy | hsload CPU-ms per handshake | 1-min load per run |"
	echo "|---|---|---:|---:|---|---:|---:|---:|---:|---|---:|---:|---|"
	for m in $MODES; do
		for p in "${ACTIVE[@]}"; do
			k=$p/$m
			local r c
			r=$(med "${S_RATE[$k]}") c=$(med "${S_CPU[$k]}")
			echo "| $p | $m | $(fmt "$r" %.0f) | $c | ${S_CPU[$k]% } | $(cap "$c") | $(fmt "$(med "${S_RES[$k]}")" %.1f) | $(fmt "$(med "${S_P50[$k]}")" %.2f) | $(fmt "$(med "${S_P99[$k]}")" %.2f) | ${S_ERR[$k]% } | $(busy "$c" "$r") | $(med "${S_CCPU[$k]}") | ${S_LOAD[$k]%,} |"
		done
	done
	echo
	echo "Peak RSS after all runs: $(for p in "${ACTIVE[@]}"; do printf '%s %s MiB; ' "$p" "${RSS[$p]}"; done)"
	echo
	if [[ -n ${PID_OF[kvgate]:-} && -n ${PID_OF[haproxy]:-} ]]; then
		echo "kvgate ÷ HAProxy (same run; first the median of the per-round ratios, the steadier figure on a shared machine):"
		echo
		for m in $MODES; do
			echo "- $m: CPU per handshake $(paired "${S_CPU[kvgate/$m]:-}" "${S_CPU[haproxy/$m]:-}"); ratio of the medians $(ratio "$(med "${S_CPU[kvgate/$m]:-}")" "$(med "${S_CPU[haproxy/$m]:-}")"); handshakes/s $(paired "${S_RATE[kvgate/$m]:-}" "${S_RATE[haproxy/$m]:-}")"
		done
		echo "- resumed ÷ full CPU per handshake: kvgate $(ratio "$(med "${S_CPU[kvgate/resumed]:-}")" "$(med "${S_CPU[kvgate/full]:-}")"), HAProxy $(ratio "$(med "${S_CPU[haproxy/resumed]:-}")" "$(med "${S_CPU[haproxy/full]:-}")")"
		echo "- TLS share of the CPU (mode minus plain, ms per connection): full kvgate $(diffms kvgate full), HAProxy $(diffms haproxy full); resumed kvgate $(diffms kvgate resumed), HAProxy $(diffms haproxy resumed)"
		echo "- TLS share, kvgate ÷ HAProxy: full $(ratio "$(diffms kvgate full)" "$(diffms haproxy full)"), resumed $(ratio "$(diffms kvgate resumed)" "$(diffms haproxy resumed)")"
		echo
	fi
	echo "## Versions"
	echo
	echo "- haproxy: $(haproxy -v 2>&1 | head -n 1); $(haproxy -vv 2>&1 | grep -m1 'Running on OpenSSL' || true)"
	echo "- nginx (backend): $(nginx -v 2>&1 | head -n 1)"
	echo "- openssl: $(openssl version)"
	echo "- go: $(go version)"
	echo "- kvgate: $("$WORK/bin/kvgate" version 2>&1 | head -n 1) (commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown))"
	echo "- kernel: $(uname -srm); CPUs: $(nproc); $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
}

report >"$RESULTS"
cat "$RESULTS"
