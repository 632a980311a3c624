#!/usr/bin/env bash
# HTTP/3 throughput and CPU per request of kvgate against Caddy (both built on quic-go) on one core.
#
# Both proxies serve the same throwaway ECDSA P-256 certificate (made with openssl in a temp
# dir) on HTTP/3, run with GOMAXPROCS=1 pinned to one core, and forward over HTTP/1.1
# keep-alive to the same nginx static backend serving a 1 KiB file. The load client h3load
# (beside this script, quic-go's http3 client) runs STREAMS request loops over QCONNS QUIC
# connections for DURATION, on the other core with the backend. Per proxy it records req/s,
# proxy CPU-ms per request (utime+stime from /proc over the process tree), p50/p99, errors,
# peak RSS (VmHWM) and the client's own CPU per request. Rounds interleave the proxies
# (caddy, kvgate, caddy, kvgate, ...) so drifting background load hits both alike.
# See README.md beside this file for the method and its limits.
#
# Environment (all optional):
#   DURATION=10s  length of each measured run (s suffix)
#   RUNS=3        rounds; the table shows the median of each column
#   STREAMS=32    concurrent requests in all
#   QCONNS=4      QUIC connections they are spread over
#   PROXIES="caddy kvgate"   which proxies to measure
#   PROXY_CPU=0 LOAD_CPU=1   cores for the proxies and for backend + load client
#   NICE=-20      niceness for this run's autogroup (root), as in benchmarks/overhead/run.sh
#   SKIP_INSTALL=1           never call apt-get / go install
#   RESULTS=path  where to write the Markdown (default results.md beside this script)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

DURATION=${DURATION:-10s}
RUNS=${RUNS:-3}
STREAMS=${STREAMS:-32}
QCONNS=${QCONNS:-4}
PROXIES=${PROXIES:-"caddy kvgate"}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SKIP_INSTALL=${SKIP_INSTALL:-0}
NICE=${NICE:-0}
RESULTS=${RESULTS:-$HERE/results.md}
CADDY_MODULE=github.com/caddyserver/caddy/v2/cmd/caddy@v2.11.9
INVOCATION="DURATION=$DURATION RUNS=$RUNS STREAMS=$STREAMS QCONNS=$QCONNS$([[ $NICE == 0 ]] || echo " NICE=$NICE") PROXIES=\"$PROXIES\" benchmarks/h3/run.sh"

GOBIN_DIR=$(go env GOBIN 2>/dev/null || true)
[[ -n $GOBIN_DIR ]] || GOBIN_DIR="$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"
export PATH="$GOBIN_DIR:$PATH"

log() { printf '[h3] %s\n' "$*" >&2; }
# Shared helpers from benchmarks/lib.sh: die, alive, stop_pid, cleanup, free_port, tree_pids, cpu_ticks, hwm_kib, start_bg, wait_url, median, loadavg, write_backend, med, fmt, busy, set_priority, install_missing.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$RUNS'"
[[ $STREAMS =~ ^[1-9][0-9]*$ && $QCONNS =~ ^[1-9][0-9]*$ ]] || die "STREAMS and QCONNS must be positive integers"
((QCONNS <= STREAMS)) || die "QCONNS ($QCONNS) must not exceed STREAMS ($STREAMS)"
[[ $NICE =~ ^-?[0-9]+$ ]] || die "NICE must be an integer, got '$NICE'"
[[ $DURATION =~ ^[1-9][0-9]*s$ ]] || die "DURATION must be whole seconds like 10s, got '$DURATION'"
LOAD_TIMEOUT=$((${DURATION%s} + 30))

# ---------------------------------------------------------------- cleanup

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kvgate-h3.XXXXXX")
chmod 755 "$WORK" # nginx workers run unprivileged and must read the backend file
PIDS=()

trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

set_priority

# ---------------------------------------------------------------- install

ensure_tools() { install_missing nginx openssl curl jq taskset ss; }

# ---------------------------------------------------------------- configs

make_cert() { # dir: ECDSA P-256 self-signed certificate for 127.0.0.1 / localhost
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
		-keyout "$1/key.pem" -out "$1/cert.pem" 2>/dev/null
	chmod 644 "$1"/*.pem
}

write_caddy() { # dir port backendport
	mkdir -p "$1"
	cat >"$1/Caddyfile" <<CONF
{
	admin off
	auto_https off
	persist_config off
	servers {
		protocols h1 h2 h3
	}
}
https://127.0.0.1:$2 {
	tls $CERTS/cert.pem $CERTS/key.pem
	reverse_proxy 127.0.0.1:$3
}
CONF
}

write_kvgate() { # dir port adminport backendport
	mkdir -p "$1"
	cat >"$1/kvgate.yaml" <<CONF
admin: {address: 127.0.0.1:$3}
accessLog: {path: "off"}
listeners:
  - name: bench
    address: 127.0.0.1:$2
    protocols: [http1, http2, http3]
    tls: {certFile: $CERTS/cert.pem, keyFile: $CERTS/key.pem}
routes:
  - {name: all, backends: [{pool: backend}]}
pools:
  - {name: backend, endpoints: ["127.0.0.1:$4"]}
CONF
}

# ---------------------------------------------------------------- proxies

declare -A PID_OF URL_OF
ACTIVE=()

start_proxy() { # name
	local name=$1 dir=$WORK/$1 port aport
	port=$(free_port)
	[[ -z $(ss -Hlun "sport = :$port") ]] || die "UDP port $port is taken; rerun"
	case $name in
	caddy)
		write_caddy "$dir" "$port" "$BPORT"
		start_bg "$dir/log" env GOMAXPROCS=1 XDG_CONFIG_HOME="$dir" XDG_DATA_HOME="$dir" \
			"${PROXY_PFX[@]}" caddy run --adapter caddyfile --config "$dir/Caddyfile"
		;;
	kvgate)
		aport=$(free_port)
		write_kvgate "$dir" "$port" "$aport" "$BPORT"
		start_bg "$dir/log" env GOMAXPROCS=1 "${PROXY_PFX[@]}" "$WORK/bin/kvgate" run --config "$dir/kvgate.yaml"
		;;
	*) die "unknown proxy $name (caddy | kvgate)" ;;
	esac
	URL_OF[$name]="https://127.0.0.1:$port/1k.bin"
	PID_OF[$name]=$STARTED_PID
	if ! wait_url "${URL_OF[$name]}" "$STARTED_PID" -k; then
		tail -n 20 "$dir/log" >&2 || true
		die "$name did not serve ${URL_OF[$name]} over TCP within 15s (log tail above)"
	fi
	local js
	js=$(h3load "${URL_OF[$name]}" 2s) || js='{}'
	[[ $(jq -r '.requests // 0' <<<"$js") -gt 0 && $(jq -r '.errors' <<<"$js") == 0 ]] ||
		{ tail -n 20 "$dir/log" >&2 || true; die "$name does not answer HTTP/3 cleanly: ${js:-no output}"; }
	log "$name: pid $STARTED_PID on ${URL_OF[$name]} (TCP and UDP); warm-up: $(jq -c '{requests, perSecond: (.perSecond|floor)}' <<<"$js")"
	ACTIVE+=("$name")
}

# ---------------------------------------------------------------- measurement

declare -A S_RATE S_CPU S_CCPU S_P50 S_P99 S_ERR S_LOAD

h3load() { # url duration -> JSON on stdout
	"${LOAD_PFX[@]}" timeout "$LOAD_TIMEOUT" "$WORK/bin/h3load" -url "$1" -c "$STREAMS" -conns "$QCONNS" -d "$2" -size 1024
}

measure() { # name run
	local name=$1 pid=${PID_OF[$1]} t0 t1 js n
	t0=$(cpu_ticks "$pid")
	js=$(h3load "${URL_OF[$name]}" "$DURATION") || { log "$name: h3load failed"; js='{}'; }
	t1=$(cpu_ticks "$pid")
	alive "$pid" || { tail -n 30 "$WORK/$name/log" >&2; die "$name died during run $2"; }
	printf '%s %s %s\n' "$name" "$2" "$js" >>"$WORK/h3load.log"
	n=$(jq -r '.requests // 0' <<<"$js")
	S_RATE[$name]+="$(jq -r '.perSecond // "-"' <<<"$js") "
	S_CPU[$name]+="$(awk -v t=$((t1 - t0)) -v n="$n" -v hz="$CLK_TCK" 'BEGIN { if (n > 0) printf "%.4f", t / hz * 1000 / n; else print "-" }') "
	S_CCPU[$name]+="$(jq -r 'if .requests > 0 then .clientCpuMs / .requests * 10000 | round / 10000 else "-" end' <<<"$js") "
	S_P50[$name]+="$(jq -r '.p50ms // "-"' <<<"$js") "
	S_P99[$name]+="$(jq -r '.p99ms // "-"' <<<"$js") "
	S_ERR[$name]+="$(jq -r '.errors // "-"' <<<"$js") "
	S_LOAD[$name]+="$(loadavg | cut -d' ' -f1),"
	log "$name run $2: $(jq -c '{requests, errors, perSecond: (.perSecond // 0 | floor), p50ms, p99ms, firstError}' <<<"$js"), proxy CPU $((t1 - t0)) ticks, load $(loadavg)"
}

# ---------------------------------------------------------------- main

ensure_tools
if [[ " $PROXIES " == *" caddy "* ]] && ! command -v caddy >/dev/null; then
	[[ $SKIP_INSTALL != 1 ]] || die "caddy missing (go install $CADDY_MODULE)"
	log "go install $CADDY_MODULE (several minutes on 2 cores)"
	timeout 1500 go install "$CADDY_MODULE" >&2 || die "go install $CADDY_MODULE failed"
fi
mkdir -p "$WORK/bin" "$WORK/certs"
CERTS=$WORK/certs
(cd "$ROOT" && go build -o "$WORK/bin/kvgate" ./cmd/kvgate && go build -o "$WORK/bin/h3load" ./benchmarks/h3/h3load) >"$WORK/build.log" 2>&1 ||
	{ cat "$WORK/build.log" >&2; die "go build failed"; }
make_cert "$CERTS"

LOAD_BEFORE=$(loadavg)
log "load average before: $LOAD_BEFORE"

BPORT=$(free_port)
write_backend "$WORK/backend" "$BPORT"
start_bg "$WORK/backend/log" "${LOAD_PFX[@]}" nginx -p "$WORK/backend" -e "$WORK/backend/error.log" -c "$WORK/backend/nginx.conf" -g 'daemon off;'
wait_url "http://127.0.0.1:$BPORT/1k.bin" "$STARTED_PID" || die "backend nginx did not start"

for p in $PROXIES; do start_proxy "$p"; done
for run in $(seq "$RUNS"); do
	for p in "${ACTIVE[@]}"; do measure "$p" "$run"; done
done
LOAD_AFTER=$(loadavg)

# ---------------------------------------------------------------- report

declare -A RSS
for p in "${ACTIVE[@]}"; do RSS[$p]=$(awk -v k="$(hwm_kib "${PID_OF[$p]}")" 'BEGIN {printf "%.1f", k / 1024}'); done

modversion() {
	local v
	v=$(go version -m "$(command -v "$1")" 2>/dev/null | awk '$1 == "mod" {print $2, $3; exit}' || true)
	echo "${v:-not a go install build}"
}
quicgo() { # quic-go version a Go binary was built with
	go version -m "$1" 2>/dev/null | awk '$2 == "github.com/quic-go/quic-go" {print $3; exit}'
}

report() {
	local p r c
	echo "# HTTP/3: kvgate against Caddy"
	echo
	echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) by \`benchmarks/h3/run.sh\` (see README.md for the method)."
	echo
	echo "Command: \`$INVOCATION\`"
	echo
	echo "Each proxy pinned to core $PROXY_CPU with \`GOMAXPROCS=1\`; backend nginx and h3load on core $LOAD_CPU. HTTP/3 GET of a 1 KiB file,"
	echo "$STREAMS concurrent streams over $QCONNS QUIC connections, HTTP/1.1 keep-alive to the backend; $RUNS rounds of $DURATION per row, proxies interleaved, median shown."
	[[ $NICE == 0 ]] || echo "Scheduling: niceness $NICE on the run's $([[ $AUTOGROUP_SET == 1 ]] && echo autogroup || echo processes)."
	echo "Load average before / after: $LOAD_BEFORE / $LOAD_AFTER (other work shares this 2-core machine)."
	echo
	echo "| proxy | req/s | CPU-ms per request | CPU-ms per run | p50 ms | p99 ms | errors (per run) | peak RSS MiB | proxy core busy | h3load CPU-ms per request | 1-min load per run |"
	echo "|---|---:|---:|---|---:|---:|---|---:|---:|---:|---|"
	for p in "${ACTIVE[@]}"; do
		r=$(med "${S_RATE[$p]}") c=$(med "${S_CPU[$p]}")
		echo "| $p | $(fmt "$r" %.0f) | $c | ${S_CPU[$p]% } | $(fmt "$(med "${S_P50[$p]}")" %.2f) | $(fmt "$(med "${S_P99[$p]}")" %.2f) | ${S_ERR[$p]% } | ${RSS[$p]} | $(busy "$c" "$r") | $(med "${S_CCPU[$p]}") | ${S_LOAD[$p]%,} |"
	done
	echo
	if [[ -n ${PID_OF[kvgate]:-} && -n ${PID_OF[caddy]:-} ]]; then
		echo "kvgate ÷ Caddy (same run; median of the per-round ratios): CPU per request $(paired "${S_CPU[kvgate]}" "${S_CPU[caddy]}"), req/s $(paired "${S_RATE[kvgate]}" "${S_RATE[caddy]}")"
		echo
		echo "Ratio of the medians: req/s $(ratio "$(med "${S_RATE[kvgate]}")" "$(med "${S_RATE[caddy]}")"), CPU per request $(ratio "$(med "${S_CPU[kvgate]}")" "$(med "${S_CPU[caddy]}")"), p99 $(ratio "$(med "${S_P99[kvgate]}")" "$(med "${S_P99[caddy]}")"), peak RSS $(ratio "${RSS[kvgate]}" "${RSS[caddy]}")"
		echo
	fi
	echo "## Versions"
	echo
	if command -v caddy >/dev/null; then echo "- caddy: $(modversion caddy), quic-go $(quicgo "$(command -v caddy)")"; fi
	echo "- kvgate: $("$WORK/bin/kvgate" version 2>&1 | head -n 1) (commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)), quic-go $(quicgo "$WORK/bin/kvgate")"
	echo "- h3load: quic-go $(quicgo "$WORK/bin/h3load")"
	echo "- nginx (backend): $(nginx -v 2>&1 | head -n 1)"
	echo "- go: $(go version)"
	echo "- kernel: $(uname -srm); CPUs: $(nproc); $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
}

report >"$RESULTS"
cat "$RESULTS"
