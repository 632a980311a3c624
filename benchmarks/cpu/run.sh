#!/usr/bin/env bash
# CPU per request at moderate, fixed request rates: kvgate against HAProxy and Caddy,
# plaintext HTTP/1.1, HTTPS HTTP/1.1, HTTPS HTTP/2 and SPIFFE mTLS on both sides, plus
# the memory of 10,000 idle SSE streams over HTTP/1.1 and over h2c (kvgate, HAProxy,
# nginx) and peak RSS under the HTTP/1.1 load. One command runs every mode; see README.md beside this file.
#
# Environment (all optional):
#   DURATION=10s   length of each measured load run (s suffix)
#   RUNS=3         rounds; each round measures every proxy once per mode, back to back,
#                  and ratios are medians of the per-round ratios
#   RATES="500 2000 10000"   plaintext HTTP/1.1 rates, requests per second
#   TLS_RATE=2000  HTTPS HTTP/1.1 and HTTP/2 rate
#   MTLS_RATE=1000 SPIFFE mTLS rate (client -> proxy -> upstream, mTLS on both hops)
#   CONNS=16       client connections (keep-alive) in every mode
#   STREAMS=10000  idle SSE streams held open through each proxy
#   MODES="h1 tls-h1 tls-h2 mtls sse sse-h2"   which modes to run (sse: idle streams over
#                  HTTP/1.1; sse-h2: the same over prior-knowledge h2c, SSE_PER_CONN per connection)
#   PROXIES="haproxy caddy kvgate"      proxies of the CPU modes
#   ACCESSLOG_ROW=1  also measure kvgate with its default JSON access log (to a file) at 2,000 req/s
#   NOKUBE_ROW=1   also measure kvgate built with -tags nokube (row kvgate-nokube) in the plaintext mode:
#                  the build without the Kubernetes client, for its peak RSS
#   BASE_BIN=path  also measure this kvgate binary (an older build, row kvgate-base) in the plaintext
#                  and idle-stream modes, paired with kvgate: what a change bought
#   SSE_PROXIES="kvgate haproxy nginx"  proxies of the idle-stream modes (plus kvgate-base with BASE_BIN)
#   SSE_PER_CONN=100  streams per client connection in sse-h2 (the default stream limit of all three)
#   SHORT=1        a run of seconds for CI: DURATION=2s RUNS=1 RATES="500 2000" STREAMS=1000
#   PROXY_CPU=0 LOAD_CPU=1   the proxy's core, and the core of backend + load client
#   NICE=-20       raise this run's autogroup priority (root; see benchmarks/overhead/README.md)
#   SKIP_INSTALL=1 never apt-get / go install
#   RESULTS=path   Markdown report (default results.md beside this script)
#   PLOT=path      PNG plot of CPU per request against rate (default cpu-per-request.png beside it)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

SHORT=${SHORT:-0}
if [[ $SHORT == 1 ]]; then
	DURATION=${DURATION:-2s} RUNS=${RUNS:-1} RATES=${RATES:-"500 2000"} STREAMS=${STREAMS:-1000}
fi
DURATION=${DURATION:-10s}
RUNS=${RUNS:-3}
RATES=${RATES:-"500 2000 10000"}
TLS_RATE=${TLS_RATE:-2000}
MTLS_RATE=${MTLS_RATE:-1000}
CONNS=${CONNS:-16}
STREAMS=${STREAMS:-10000}
MODES=${MODES:-"h1 tls-h1 tls-h2 mtls sse sse-h2"}
PROXIES=${PROXIES:-"haproxy caddy kvgate"}
ACCESSLOG_ROW=${ACCESSLOG_ROW:-1}
BASE_BIN=${BASE_BIN:-}
NOKUBE_ROW=${NOKUBE_ROW:-1}
SSE_PROXIES=${SSE_PROXIES:-"kvgate haproxy nginx${BASE_BIN:+ kvgate-base}"}
SSE_PER_CONN=${SSE_PER_CONN:-100}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
NICE=${NICE:-0}
SKIP_INSTALL=${SKIP_INSTALL:-0}
RESULTS=${RESULTS:-$HERE/results.md}
PLOT=${PLOT:-$HERE/cpu-per-request.png}
CADDY_MODULE=github.com/caddyserver/caddy/v2/cmd/caddy@v2.11.9
INVOCATION="${BASE_BIN:+BASE_BIN=... }DURATION=$DURATION RUNS=$RUNS RATES=\"$RATES\" STREAMS=$STREAMS MODES=\"$MODES\" PROXIES=\"$PROXIES\"$([[ $NICE == 0 ]] || echo " NICE=$NICE") benchmarks/cpu/run.sh"

GOBIN_DIR=$(go env GOBIN 2>/dev/null || true)
[[ -n $GOBIN_DIR ]] || GOBIN_DIR="$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"
export PATH="$GOBIN_DIR:$PATH"

log() { printf '[cpu] %s\n' "$*" >&2; }
source "$HERE/../lib.sh"

[[ -z $BASE_BIN || -x $BASE_BIN ]] || die "BASE_BIN=$BASE_BIN is not an executable"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$RUNS'"
[[ $DURATION =~ ^[1-9][0-9]*s$ ]] || die "DURATION must be whole seconds like 10s, got '$DURATION'"
[[ $STREAMS =~ ^[1-9][0-9]*$ ]] || die "STREAMS must be a positive integer, got '$STREAMS'"
for r in $RATES $TLS_RATE $MTLS_RATE $CONNS $SSE_PER_CONN; do [[ $r =~ ^[1-9][0-9]*$ ]] || die "rates and CONNS must be positive integers, got '$r'"; done
for m in $MODES; do [[ " h1 tls-h1 tls-h2 mtls sse sse-h2 " == *" $m "* ]] || die "unknown mode '$m' (h1 tls-h1 tls-h2 mtls sse sse-h2)"; done
DUR_S=${DURATION%s}
LOAD_TIMEOUT=$((DUR_S + 60))

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kvgate-cpu.XXXXXX")
chmod 755 "$WORK" # nginx workers run unprivileged and must read the backend's files
PIDS=()
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP
set_priority

has_mode() { [[ " $MODES " == *" $1 "* ]]; }

# ---------------------------------------------------------------- tools

install_missing haproxy nginx openssl curl jq taskset ss
CADDY_NOTE=""
if [[ " $PROXIES " == *" caddy "* ]] && ! command -v caddy >/dev/null; then
	if [[ $SKIP_INSTALL == 1 ]]; then
		CADDY_NOTE="caddy not installed (go install $CADDY_MODULE): row skipped"
	else
		log "go install $CADDY_MODULE (a large module graph: several minutes on two cores)"
		timeout 1500 go install "$CADDY_MODULE" >"$WORK/caddy-build.log" 2>&1 ||
			{ tail -n 20 "$WORK/caddy-build.log" >&2; CADDY_NOTE="building $CADDY_MODULE failed: row skipped"; }
	fi
fi
if [[ -n $CADDY_NOTE ]]; then
	log "$CADDY_NOTE"
	PROXIES=$(tr ' ' '\n' <<<"$PROXIES" | grep -vx caddy | tr '\n' ' ')
fi
mkdir -p "$WORK/bin"
(cd "$ROOT" && go build -o "$WORK/bin/kvgate" ./cmd/kvgate && go build -tags nokube -o "$WORK/bin/kvgate-nokube" ./cmd/kvgate && go build -o "$WORK/bin/rateload" ./benchmarks/cpu/rateload &&
	go build -o "$WORK/bin/plot" ./benchmarks/cpu/plot) >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; die "go build failed"; }

# 10,000 streams need about 20,000 descriptors in the proxy (client and upstream side).
STREAMS_WANTED=$STREAMS
if has_mode sse || has_mode sse-h2; then
	want=$((STREAMS * 2 + 2000))
	if (($(ulimit -n) < want)); then
		ulimit -Hn "$want" 2>/dev/null || true
		ulimit -n "$want" 2>/dev/null || true
	fi
	if (($(ulimit -n) < want)); then
		STREAMS=$((($(ulimit -n) - 2000) / 2))
		log "open-file limit $(ulimit -n) (raising it needs CAP_SYS_RESOURCE) is below the $want that $STREAMS_WANTED streams need: measuring $STREAMS and extrapolating"
	fi
fi

# ---------------------------------------------------------------- certificates

# One throwaway CA for everything: a plain server certificate for the HTTPS modes and
# SPIFFE SVIDs (URI SAN only) for the client, the proxy and the upstream in mtls.
CERTS=$WORK/certs
mkdir -p "$CERTS/kvgate"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=bench-ca \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
	-keyout "$CERTS/ca.key" -out "$CERTS/ca.pem" 2>/dev/null
leaf() { # name subjectAltName
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$1" \
		-keyout "$CERTS/$1.key" -out "$CERTS/$1.csr" 2>/dev/null
	printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' "$2" >"$CERTS/$1.ext"
	openssl x509 -req -in "$CERTS/$1.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca.key" -CAcreateserial -days 2 \
		-extfile "$CERTS/$1.ext" -out "$CERTS/$1.pem" 2>/dev/null
	cat "$CERTS/$1.pem" "$CERTS/$1.key" >"$CERTS/$1.combined.pem"
}
TD=spiffe://bench.test/ns/bench/sa
leaf server "IP:127.0.0.1,DNS:localhost"
leaf client "URI:$TD/client"
leaf proxy "URI:$TD/proxy"
leaf backend "URI:$TD/backend"
cp "$CERTS/proxy.pem" "$CERTS/kvgate/svid.0.pem"
cp "$CERTS/proxy.key" "$CERTS/kvgate/svid.0.key"
cp "$CERTS/ca.pem" "$CERTS/kvgate/bundle.0.pem"
chmod -R a+rX "$CERTS"

# ---------------------------------------------------------------- backend

BPORT=$(free_port)  # plaintext
BTPORT=$(free_port) # mTLS, SVID spiffe://bench.test/ns/bench/sa/backend
write_backend "$WORK/backend" "$BPORT"
# The mTLS server block: nginx verifies the proxy's SVID against the bundle.
sed -i "s#^}\$#	server {\n\t\tlisten 127.0.0.1:$BTPORT ssl;\n\t\tssl_protocols TLSv1.3;\n\t\tssl_certificate $CERTS/backend.pem;\n\t\tssl_certificate_key $CERTS/backend.key;\n\t\tssl_client_certificate $CERTS/ca.pem;\n\t\tssl_verify_client on;\n\t\tlocation / { root $WORK/backend/www; }\n\t}\n}#" "$WORK/backend/nginx.conf"
start_bg "$WORK/backend/log" "${LOAD_PFX[@]}" nginx -p "$WORK/backend" -e "$WORK/backend/error.log" -c "$WORK/backend/nginx.conf" -g 'daemon off;'
BACKEND_PID=$STARTED_PID
wait_url "http://127.0.0.1:$BPORT/1k.bin" "$BACKEND_PID" || { cat "$WORK/backend/error.log" >&2 || true; die "backend nginx did not start"; }
[[ $(curl -s "http://127.0.0.1:$BPORT/1k.bin" | wc -c) == 1024 ]] || die "backend does not serve 1024 bytes"
[[ $(curl -sk --cert "$CERTS/proxy.pem" --key "$CERTS/proxy.key" "https://127.0.0.1:$BTPORT/1k.bin" | wc -c) == 1024 ]] ||
	die "mTLS backend does not serve 1024 bytes to the proxy's SVID"

# ---------------------------------------------------------------- proxies

declare -A PID_OF PORT_PLAIN PORT_TLS PORT_MTLS

write_haproxy() { # dir plain tls mtls
	{
		haproxy_defaults safe
		cat <<CONF
frontend plain
	bind 127.0.0.1:$2
	default_backend be
frontend tls
	bind 127.0.0.1:$3 ssl crt $CERTS/server.combined.pem alpn h2,http/1.1 ssl-min-ver TLSv1.3
	default_backend be
frontend mesh
	bind 127.0.0.1:$4 ssl crt $CERTS/proxy.combined.pem ca-file $CERTS/ca.pem verify required alpn h2,http/1.1 ssl-min-ver TLSv1.3
	default_backend be_mtls
backend be
	server b1 127.0.0.1:$BPORT
backend be_mtls
	server b1 127.0.0.1:$BTPORT ssl crt $CERTS/proxy.combined.pem ca-file $CERTS/ca.pem verify required ssl-min-ver TLSv1.3
CONF
	} >"$1/haproxy.cfg"
}

write_caddy() { # dir plain tls
	cat >"$1/Caddyfile" <<CONF
{
	admin off
	auto_https off
	persist_config off
	servers {
		protocols h1 h2
	}
}
http://127.0.0.1:$2 {
	reverse_proxy 127.0.0.1:$BPORT
}
https://127.0.0.1:$3 {
	tls $CERTS/server.pem $CERTS/server.key
	reverse_proxy 127.0.0.1:$BPORT
}
CONF
}

write_kvgate() { # dir plain tls mtls admin [accesslog]
	cat >"$1/kvgate.yaml" <<CONF
admin: {address: 127.0.0.1:$5}
accessLog: {path: "${6:-off}"}
identity: {files: {dir: $CERTS/kvgate}}
listeners:
  - {name: plain, address: 127.0.0.1:$2, protocols: [http1]}
  - name: tls
    address: 127.0.0.1:$3
    protocols: [http1, http2]
    tls: {certFile: $CERTS/server.pem, keyFile: $CERTS/server.key}
  - name: mesh
    address: 127.0.0.1:$4
    protocols: [http1, http2]
    tls: {spiffe: true, clientAuth: require}
routes:
  - {name: mesh, listeners: [mesh], backends: [{pool: mtls}]}
  - {name: all, listeners: [plain, tls], backends: [{pool: backend}]}
pools:
  - {name: backend, endpoints: ["127.0.0.1:$BPORT"]}
  - {name: mtls, endpoints: ["127.0.0.1:$BTPORT"], tls: {spiffeID: "$TD/backend"}}
CONF
}

start_proxy() { # name
	local name=$1 dir=$WORK/$1 p1 p2 p3
	mkdir -p "$dir"
	p1=$(free_port) p2=$(free_port) p3=$(free_port)
	case $name in
	haproxy)
		write_haproxy "$dir" "$p1" "$p2" "$p3"
		start_bg "$dir/log" "${PROXY_PFX[@]}" haproxy -db -f "$dir/haproxy.cfg"
		;;
	caddy)
		write_caddy "$dir" "$p1" "$p2"
		p3=""
		start_bg "$dir/log" env GOMAXPROCS=1 HOME="$dir" XDG_DATA_HOME="$dir" XDG_CONFIG_HOME="$dir" \
			"${PROXY_PFX[@]}" caddy run --adapter caddyfile --config "$dir/Caddyfile"
		;;
	kvgate | kvgate-accesslog | kvgate-base | kvgate-nokube)
		# kvgate-accesslog: the default JSON access log, to stdout (here the log file).
		# kvgate-base: BASE_BIN, the same configuration. kvgate-nokube: built with -tags nokube.
		write_kvgate "$dir" "$p1" "$p2" "$p3" "$(free_port)" "$([[ $name == kvgate-accesslog ]] && echo stdout || echo off)"
		local bin=$WORK/bin/kvgate
		[[ $name != kvgate-base ]] || bin=$BASE_BIN
		[[ $name != kvgate-nokube ]] || bin=$WORK/bin/kvgate-nokube
		start_bg "$dir/log" env GOMAXPROCS=1 "${PROXY_PFX[@]}" "$bin" run --config "$dir/kvgate.yaml"
		;;
	*) die "unknown proxy $name (haproxy | caddy | kvgate)" ;;
	esac
	PID_OF[$name]=$STARTED_PID PORT_PLAIN[$name]=$p1 PORT_TLS[$name]=$p2 PORT_MTLS[$name]=$p3
	wait_url "http://127.0.0.1:$p1/1k.bin" "$STARTED_PID" || { tail -n 20 "$dir/log" >&2; die "$name did not start (log tail above)"; }
	[[ $(curl -sk "https://127.0.0.1:$p2/1k.bin" | wc -c) == 1024 ]] || { tail -n 20 "$dir/log" >&2; die "$name: HTTPS does not return the 1 KiB file"; }
	if [[ -n $p3 ]]; then
		[[ $(curl -sk --cert "$CERTS/client.pem" --key "$CERTS/client.key" "https://127.0.0.1:$p3/1k.bin" | wc -c) == 1024 ]] ||
			{ tail -n 20 "$dir/log" >&2; die "$name: mTLS does not return the 1 KiB file"; }
	fi
	log "$name: pid $STARTED_PID (plain $p1, tls $p2${p3:+, mtls $p3})"
}

# ---------------------------------------------------------------- measurement

# Samples per key "proxy/mode", one word per round.
declare -A S_CPU S_P50 S_P99 S_RATE S_ERR S_NOTE
KEYS=()

rateload() { "${LOAD_PFX[@]}" timeout "$LOAD_TIMEOUT" "$WORK/bin/rateload" "$@"; }

status_kib() { # FIELD PID: a /proc/PID/status field (VmRSS, RssAnon, RssFile, VmHWM) summed over the process tree
	local total=0 p v
	for p in $(tree_pids "$2"); do
		v=$(awk -v f="$1:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null || true)
		total=$((total + ${v:-0}))
	done
	echo "$total"
}
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
rss_kib() { status_kib VmRSS "$1"; }

# measure NAME MODE RATE URL [rateload flags...]: one load run; NAME "direct" has no proxy.
measure() {
	local name=$1 mode=$2 rate=$3 url=$4 key="$1/$2" pid t0 t1 js ok
	shift 4
	[[ " ${KEYS[*]} " == *" $key "* ]] || KEYS+=("$key")
	pid=${PID_OF[$name]:-0}
	[[ $pid == 0 ]] || t0=$(cpu_ticks "$pid")
	js=$(rateload -url "$url" -rate "$rate" -d "$DURATION" -c "$CONNS" "$@") || js='{"ok":0,"errors":1,"firstError":"rateload failed"}'
	[[ $pid == 0 ]] || t1=$(cpu_ticks "$pid")
	if [[ $pid != 0 ]] && ! alive "$pid"; then tail -n 30 "$WORK/$name/log" >&2; die "$name died during $mode"; fi
	printf '%s %s\n' "$key" "$js" >>"$WORK/rateload.log"
	ok=$(jq -r '.ok // 0' <<<"$js")
	if [[ $pid == 0 || $ok == 0 ]]; then S_CPU[$key]+="- "; else S_CPU[$key]+="$(awk -v t=$((t1 - t0)) -v n="$ok" -v hz="$CLK_TCK" 'BEGIN { printf "%.4f", t / hz * 1000 / n }') "; fi
	S_P50[$key]+="$(jq -r '.p50ms // "-"' <<<"$js") "
	S_P99[$key]+="$(jq -r '.p99ms // "-"' <<<"$js") "
	S_RATE[$key]+="$(jq -r '(.rate // 0) | floor' <<<"$js") "
	S_ERR[$key]+="$(jq -r '.errors // 0' <<<"$js") "
	local fe
	fe=$(jq -r '.firstError // empty' <<<"$js")
	[[ -z $fe ]] || S_NOTE[$key]="${fe:0:160}"
	log "$key: ok $ok, $(jq -r '.rate|floor' <<<"$js") req/s, CPU-ms/req $(awk '{print $NF}' <<<"${S_CPU[$key]}"), p99 $(jq -r .p99ms <<<"$js") ms, load $(loadavg | cut -d' ' -f1)"
}

url_of() { # name mode
	case $2 in
	h1-*) echo "http://127.0.0.1:${PORT_PLAIN[$1]}/1k.bin" ;;
	tls-*) echo "https://127.0.0.1:${PORT_TLS[$1]}/1k.bin" ;;
	mtls) echo "https://127.0.0.1:${PORT_MTLS[$1]}/1k.bin" ;;
	esac
}

# run_mode MODE RATE [rateload flags...]: RUNS rounds, each proxy once per round, the
# order rotated every round so no proxy always runs first (or last) after the direct run.
run_mode() {
	local mode=$1 rate=$2 round i n p
	shift 2
	local order=()
	for p in $PROXIES; do
		[[ $mode != mtls || -n ${PORT_MTLS[$p]} ]] && order+=("$p")
	done
	[[ $mode != h1-2000 || -z ${PID_OF[kvgate-accesslog]:-} ]] || order+=(kvgate-accesslog)
	[[ $mode != h1-* || -z ${PID_OF[kvgate-base]:-} ]] || order+=(kvgate-base)
	[[ $mode != h1-* || -z ${PID_OF[kvgate-nokube]:-} ]] || order+=(kvgate-nokube)
	n=${#order[@]}
	for round in $(seq "$RUNS"); do
		[[ $mode != h1-* ]] || measure direct "$mode" "$rate" "http://127.0.0.1:$BPORT/1k.bin"
		for i in $(seq 0 $((n - 1))); do
			p=${order[$(((i + round - 1) % n))]}
			measure "$p" "$mode" "$rate" "$(url_of "$p" "$mode")" "$@"
		done
	done
}

LOAD_BEFORE=$(loadavg)
UPTIME_BEFORE=$(uptime)
log "uptime before: $UPTIME_BEFORE"
STARTED_AT=$(date -u +%Y-%m-%dT%H:%MZ)

declare -A HWM_H1 ANON_H1 FILE_H1
if has_mode h1 || has_mode tls-h1 || has_mode tls-h2 || has_mode mtls; then
	for p in $PROXIES; do start_proxy "$p"; done
	[[ $ACCESSLOG_ROW != 1 || " $PROXIES " != *" kvgate "* || " $RATES " != *" 2000 "* ]] || start_proxy kvgate-accesslog
	[[ -z $BASE_BIN ]] || start_proxy kvgate-base
	[[ $NOKUBE_ROW != 1 || " $PROXIES " != *" kvgate "* ]] || ! has_mode h1 || start_proxy kvgate-nokube
	# Warm-up: connections to the upstream opened, buffers grown, TLS sessions cached.
	for p in "${!PID_OF[@]}"; do rateload -url "$(url_of "$p" h1-x)" -rate 1000 -d 2s -c "$CONNS" >/dev/null || true; done
	if has_mode h1; then
		for r in $RATES; do run_mode "h1-$r" "$r"; done
		# VmHWM is the peak of RssAnon + RssFile + RssShmem; the split is read at the end of the load.
		for p in $PROXIES ${PID_OF[kvgate-nokube]:+kvgate-nokube}; do
			HWM_H1[$p]=$(mib "$(hwm_kib "${PID_OF[$p]}")")
			ANON_H1[$p]=$(mib "$(status_kib RssAnon "${PID_OF[$p]}")")
			FILE_H1[$p]=$(mib "$(status_kib RssFile "${PID_OF[$p]}")")
		done
	fi
	has_mode tls-h1 && run_mode tls-h1 "$TLS_RATE"
	has_mode tls-h2 && run_mode tls-h2 "$TLS_RATE" -h2
	has_mode mtls && run_mode mtls "$MTLS_RATE" -cert "$CERTS/client.pem" -key "$CERTS/client.key"
	for p in "${!PID_OF[@]}"; do stop_pid "${PID_OF[$p]}"; done
fi

# ---------------------------------------------------------------- idle SSE streams

declare -A SSE_BASE SSE_RSS SSE_ANON SSE_FILE SSE_OPEN SSE_NOTE

# sse_mode MODE: STREAMS idle streams through each of SSE_PROXIES, one proxy at a time.
# sse: HTTP/1.1, one client connection per stream. sse-h2: prior-knowledge h2c from the
# client, SSE_PER_CONN streams per connection, HTTP/1.1 to the backend (one upstream
# connection per stream in every proxy).
sse_mode() {
	local mode=$1 p dir port pid key bin h2flags=() h2bind="" h2listen="" kvproto="http1"
	if [[ $mode == sse-h2 ]]; then
		h2flags=(-h2 -m "$SSE_PER_CONN")
		h2bind=" proto h2"
		h2listen=" http2"
		kvproto="http1, http2"
	fi
	for p in $SSE_PROXIES; do
		key=$mode/$p
		dir=$WORK/$mode-$p
		mkdir -p "$dir/tmp"
		port=$(free_port)
		case $p in
		kvgate | kvgate-base)
			# maxConnections raised from its default 10,000: the streams alone are that many.
			cat >"$dir/kvgate.yaml" <<CONF
admin: {address: 127.0.0.1:$(free_port)}
accessLog: {path: "off"}
limits: {maxConnections: $((STREAMS + 1000))}
listeners:
  - {name: plain, address: 127.0.0.1:$port, protocols: [$kvproto]}
routes:
  - {name: all, backends: [{pool: sse}]}
pools:
  - {name: sse, endpoints: ["127.0.0.1:$SPORT"]}
CONF
			bin=$WORK/bin/kvgate
			[[ $p == kvgate ]] || bin=$BASE_BIN
			start_bg "$dir/log" env GOMAXPROCS=1 "${PROXY_PFX[@]}" "$bin" run --config "$dir/kvgate.yaml"
			;;
		haproxy)
			cat >"$dir/haproxy.cfg" <<CONF
global
	nbthread 1
	maxconn $((STREAMS + 500))
defaults
	mode http
	maxconn $((STREAMS + 500))
	timeout connect 5s
	timeout client 300s
	timeout server 300s
frontend plain
	bind 127.0.0.1:$port$h2bind
	default_backend be
backend be
	server b1 127.0.0.1:$SPORT
CONF
			start_bg "$dir/log" "${PROXY_PFX[@]}" haproxy -db -f "$dir/haproxy.cfg"
			;;
		nginx)
			cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile $(ulimit -n);
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections $(ulimit -n); }
http {
	access_log off;
	client_body_temp_path $dir/tmp/body;
	proxy_temp_path $dir/tmp/proxy;
	fastcgi_temp_path $dir/tmp/fastcgi;
	uwsgi_temp_path $dir/tmp/uwsgi;
	scgi_temp_path $dir/tmp/scgi;
	server {
		listen 127.0.0.1:$port$h2listen backlog=4096;
		location / {
			proxy_pass http://127.0.0.1:$SPORT;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_buffering off;
			proxy_read_timeout 300s;
		}
	}
}
CONF
			start_bg "$dir/log" "${PROXY_PFX[@]}" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;'
			;;
		*) die "unknown SSE proxy $p (kvgate | haproxy | nginx | kvgate-base with BASE_BIN)" ;;
		esac
		pid=$STARTED_PID
		for _ in $(seq 100); do [[ -n $(ss -Hltn "sport = :$port") ]] && break; sleep 0.1; done
		sleep 0.5
		SSE_BASE[$key]=$(mib "$(rss_kib "$pid")")
		rm -f "$dir/ready"
		# Held until this script has read the RSS; the hold is generous so a slow open never cuts it short.
		"${LOAD_PFX[@]}" timeout 700 "$WORK/bin/rateload" -mode sse-hold -url "http://127.0.0.1:$port/events" \
			-n "$STREAMS" "${h2flags[@]}" -hold 600s -ready "$dir/ready" >"$dir/hold.json" 2>"$dir/hold.err" &
		HOLD=$!
		PIDS+=("$HOLD")
		for _ in $(seq 3000); do [[ -s $dir/ready ]] && break; alive "$HOLD" || break; sleep 0.1; done
		sleep 2 # let the proxy settle (lazy buffers, GC)
		SSE_RSS[$key]=$(mib "$(rss_kib "$pid")")
		SSE_ANON[$key]=$(mib "$(status_kib RssAnon "$pid")")
		SSE_FILE[$key]=$(mib "$(status_kib RssFile "$pid")")
		SSE_OPEN[$key]=$(jq -r '.open // 0' "$dir/ready" 2>/dev/null || echo 0)
		SSE_NOTE[$key]=$(jq -r '.firstError // empty' "$dir/ready" 2>/dev/null | cut -c1-160 || true)
		[[ -s $dir/ready ]] || SSE_NOTE[$key]="no ready file: $(tail -n 1 "$dir/hold.err" | cut -c1-140)"
		log "$mode $p: ${SSE_OPEN[$key]} of $STREAMS streams open, RSS ${SSE_BASE[$key]} -> ${SSE_RSS[$key]} MiB (anon ${SSE_ANON[$key]}, file ${SSE_FILE[$key]}) ${SSE_NOTE[$key]}"
		stop_pid "$HOLD"
		stop_pid "$pid"
	done
}
if has_mode sse || has_mode sse-h2; then
	SPORT=$(free_port)
	start_bg "$WORK/sse-backend.log" "${LOAD_PFX[@]}" "$WORK/bin/rateload" -mode sse-backend -listen "127.0.0.1:$SPORT"
	SSE_BACKEND=$STARTED_PID
	for _ in $(seq 50); do grep -q listening "$WORK/sse-backend.log" && break; sleep 0.1; done
	for m in sse sse-h2; do has_mode "$m" && sse_mode "$m"; done
	stop_pid "$SSE_BACKEND"
fi
LOAD_AFTER=$(loadavg)

# ---------------------------------------------------------------- report

lst() { tr -s ' ' <<<"${1% }"; }
per_1k() { awk -v v="$1" 'BEGIN { if (v == "-" || v == "") print "-"; else printf "%.3f", v }'; }

rows_of() { # mode: table rows for every key of that mode
	local mode=$1 k name
	for k in "${KEYS[@]}"; do
		[[ ${k#*/} == "$mode" ]] || continue
		name=${k%%/*}
		echo "| $name | $(med "${S_RATE[$k]}") | $(med "${S_CPU[$k]}") | $(lst "${S_CPU[$k]}") | $(fmt "$(med "${S_P50[$k]}")" %.3f) | $(fmt "$(med "${S_P99[$k]}")" %.3f) | $(lst "${S_ERR[$k]}") | ${S_NOTE[$k]:-} |"
	done
}

sse_kib() { awk -v a="${SSE_BASE[$1]:-0}" -v b="${SSE_RSS[$1]:-0}" -v n="${SSE_OPEN[$1]:-0}" 'BEGIN { if (n > 0) printf "%.1f", (b - a) * 1024 / n; else print "-" }'; }
sse_at() { awk -v a="${SSE_BASE[$1]:-0}" -v b="${SSE_RSS[$1]:-0}" -v n="${SSE_OPEN[$1]:-0}" -v w="$STREAMS_WANTED" 'BEGIN { if (n > 0) printf "%.1f", a + (b - a) * w / n; else print "-" }'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { if (v == "n/a" || v == "") print "not measured"; else if (v + 0 <= t + 0) print "met"; else print "not met" }'; }
first() { awk '{print $1}' <<<"$1"; }

report() {
	local m r k h c x
	echo "# CPU per request at fixed rates: kvgate, HAProxy, Caddy"
	echo
	echo "Measured $STARTED_AT by \`benchmarks/cpu/run.sh\` (method: README.md beside it)."
	echo
	echo "Command: \`$INVOCATION\`"
	echo
	echo "Each proxy runs alone on core $PROXY_CPU with one thread (\`nbthread 1\`, \`GOMAXPROCS=1\`); nginx (backend, 1 KiB file) and"
	echo "the open-loop client \`rateload\` ($CONNS keep-alive connections) share core $LOAD_CPU. Access logs off. $RUNS round(s) of $DURATION;"
	echo "in each round every proxy is measured once per mode, back to back, so ratios are medians of per-round ratios."
	echo "CPU = utime+stime of the proxy's process tree from /proc/PID/stat over the run ÷ requests answered:"
	echo "CPU-ms per request, which is also vCPU per 1,000 req/s."
	echo
	echo "uptime before: \`$UPTIME_BEFORE\`; load average after: $LOAD_AFTER. This machine is shared with other work: compare ratios within this run."
	echo
	for m in "${MODE_LIST[@]}"; do
		echo "## $m"
		echo
		echo "| proxy | achieved req/s | CPU-ms/req (median) | per round | p50 ms | p99 ms | errors per round | note |"
		echo "|---|---:|---:|---|---:|---:|---|---|"
		rows_of "$m"
		echo
		if [[ -n ${S_CPU[kvgate/$m]:-} ]]; then
			[[ -z ${S_CPU[haproxy/$m]:-} ]] || echo "- kvgate ÷ HAProxy CPU per request: $(paired "$(lst "${S_CPU[kvgate/$m]}")" "$(lst "${S_CPU[haproxy/$m]}")")"
			[[ -z ${S_CPU[caddy/$m]:-} ]] || echo "- kvgate ÷ Caddy CPU per request: $(paired "$(lst "${S_CPU[kvgate/$m]}")" "$(lst "${S_CPU[caddy/$m]}")")"
			[[ -z ${S_CPU[kvgate-base/$m]:-} ]] || echo "- kvgate ÷ kvgate-base (BASE_BIN, an older build): $(paired "$(lst "${S_CPU[kvgate/$m]}")" "$(lst "${S_CPU[kvgate-base/$m]}")")"
			[[ -z ${S_CPU[kvgate-nokube/$m]:-} ]] || echo "- kvgate built with -tags nokube ÷ kvgate: $(paired "$(lst "${S_CPU[kvgate-nokube/$m]}")" "$(lst "${S_CPU[kvgate/$m]}")")"
			[[ -z ${S_CPU[kvgate-accesslog/$m]:-} ]] || echo "- kvgate with its default JSON access log ÷ kvgate with it off: $(paired "$(lst "${S_CPU[kvgate-accesslog/$m]}")" "$(lst "${S_CPU[kvgate/$m]}")")"
			[[ -z ${S_P99[haproxy/$m]:-} ]] || echo "- p99: kvgate $(fmt "$(med "${S_P99[kvgate/$m]}")" %.3f) ms, HAProxy $(fmt "$(med "${S_P99[haproxy/$m]}")" %.3f) ms$([[ -z ${S_P99[direct/$m]:-} ]] || echo ", backend alone $(fmt "$(med "${S_P99[direct/$m]}")" %.3f) ms")"
			echo
		fi
	done
	if has_mode h1 && ((${#HWM_H1[@]})); then
		echo "## Peak RSS under the HTTP/1.1 load"
		echo
		echo "VmHWM after every HTTP/1.1 round (all rates), and the split of resident memory at the end of the load:"
		echo "RssAnon (heap, stacks, buffers) and RssFile (pages of the executable and libraries read from disk), MiB."
		echo
		echo "| proxy | peak RSS (VmHWM) | RssAnon at end | RssFile at end |"
		echo "|---|---:|---:|---:|"
		for p in $PROXIES ${HWM_H1[kvgate-nokube]:+kvgate-nokube}; do echo "| $p | ${HWM_H1[$p]} | ${ANON_H1[$p]} | ${FILE_H1[$p]} |"; done
		echo
	fi
	for m in sse sse-h2; do
		has_mode "$m" || continue
		echo "## $STREAMS_WANTED idle SSE streams$([[ $m == sse ]] && echo ", HTTP/1.1" || echo ", h2c ($SSE_PER_CONN streams per client connection)")"
		echo
		echo "A Go SSE backend (HTTP/1.1) sends one event per stream and then holds it; \`rateload -mode sse-hold$([[ $m == sse ]] || echo " -h2")\` opens the streams"
		echo "through the proxy$([[ $m == sse ]] && echo ", one connection each" || echo " as prior-knowledge h2c, $SSE_PER_CONN per connection"), waits for each first event, and holds them while VmRSS (process tree) is read;"
		echo "RssAnon and RssFile are read at the same moment."
		if ((STREAMS < STREAMS_WANTED)); then
			echo "The open-file limit ($(ulimit -n), not raisable here) allowed $STREAMS streams per proxy: the last column"
			echo "extrapolates RSS before + $STREAMS_WANTED × the measured per-stream cost."
		fi
		echo
		echo "| proxy | streams open | RSS before MiB | RSS with streams MiB | RssAnon MiB | RssFile MiB | KiB per stream | RSS at $STREAMS_WANTED streams MiB | note |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
		for p in $SSE_PROXIES; do
			k=$m/$p
			echo "| $p | ${SSE_OPEN[$k]:-0} | ${SSE_BASE[$k]:--} | ${SSE_RSS[$k]:--} | ${SSE_ANON[$k]:--} | ${SSE_FILE[$k]:--} | $(sse_kib "$k") | $(sse_at "$k") | ${SSE_NOTE[$k]:-} |"
		done
		echo
	done
	echo "## Targets (issue 15)"
	echo
	for r in $RATES; do
		k=h1-$r
		[[ -n ${S_CPU[kvgate/$k]:-} ]] || continue
		h=$(first "$(paired "$(lst "${S_CPU[kvgate/$k]}")" "$(lst "${S_CPU[haproxy/$k]:-}")")")
		c=$(first "$(paired "$(lst "${S_CPU[kvgate/$k]}")" "$(lst "${S_CPU[caddy/$k]:-}")")")
		echo "- HTTP/1.1 at $r req/s: kvgate ÷ HAProxy $h (≤ 1.0: $(verdict "$h" 1.0)); kvgate ÷ Caddy $c (≤ 0.5: $(verdict "$c" 0.5))"
	done
	for k in tls-h1 tls-h2; do
		[[ -n ${S_CPU[kvgate/$k]:-} ]] || continue
		h=$(first "$(paired "$(lst "${S_CPU[kvgate/$k]}")" "$(lst "${S_CPU[haproxy/$k]:-}")")")
		x=$(awk -v a="$(med "${S_P99[kvgate/$k]}")" -v b="$(med "${S_P99[haproxy/$k]:--}")" 'BEGIN { if (b == "-") print "not measured"; else if (a <= b) print "met"; else print "not met" }')
		echo "- $k at $TLS_RATE req/s: kvgate ÷ HAProxy $h (≤ 1.0: $(verdict "$h" 1.0)); p99 kvgate $(med "${S_P99[kvgate/$k]}") ms vs HAProxy $(med "${S_P99[haproxy/$k]:--}") ms (≤ HAProxy's: $x)"
	done
	if [[ -n ${S_CPU[kvgate/mtls]:-} ]]; then
		x=$(per_1k "$(med "${S_CPU[kvgate/mtls]}")")
		echo "- SPIFFE mTLS both sides at $MTLS_RATE req/s: kvgate $x vCPU per 1,000 req/s (≤ 0.10: $(verdict "$x" 0.10)); Istio publishes 0.20 (sidecar) and 0.25 (waypoint)$([[ -z ${S_CPU[haproxy/mtls]:-} ]] || echo "; HAProxy $(per_1k "$(med "${S_CPU[haproxy/mtls]}")") in this run")"
	fi
	for m in sse sse-h2; do
		[[ -n ${SSE_RSS[$m/kvgate]:-} ]] || continue
		x=$(sse_at "$m/kvgate")
		echo "- $STREAMS_WANTED idle SSE streams ($([[ $m == sse ]] && echo HTTP/1.1 || echo h2c)): kvgate $x MiB RSS$( ((STREAMS == STREAMS_WANTED)) || echo " (extrapolated from $STREAMS)") (≤ 150 MiB: $(verdict "$x" 150))$(for p in $SSE_PROXIES; do [[ $p == kvgate ]] || printf '; %s %s MiB' "$p" "$(sse_at "$m/$p")"; done)"
	done
	if [[ -n ${HWM_H1[kvgate]:-} ]]; then
		echo "- peak RSS under the HTTP/1.1 load: kvgate ${HWM_H1[kvgate]} MiB (≤ 24 MiB: $(verdict "${HWM_H1[kvgate]}" 24)), of which RssFile (the executable's pages) ${FILE_H1[kvgate]} MiB and RssAnon ${ANON_H1[kvgate]} MiB at the end of the load$([[ -z ${HWM_H1[kvgate-nokube]:-} ]] || echo "; built with -tags nokube: ${HWM_H1[kvgate-nokube]} MiB ($(verdict "${HWM_H1[kvgate-nokube]}" 24))")"
	fi
	echo
	echo "## Versions"
	echo
	echo "- haproxy: $(haproxy -v 2>&1 | head -n 1)"
	echo "- nginx: $(nginx -v 2>&1 | head -n 1)"
	if command -v caddy >/dev/null; then echo "- caddy: $(go version -m "$(command -v caddy)" 2>/dev/null | awk '$1 == "mod" {print $2, $3; exit}')"; fi
	echo "- kvgate: commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), $(go version | awk '{print $3}')"
	echo "- kernel: $(uname -srm); CPUs: $(nproc); $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
}

MODE_LIST=()
has_mode h1 && for r in $RATES; do MODE_LIST+=("h1-$r"); done
has_mode tls-h1 && MODE_LIST+=(tls-h1)
has_mode tls-h2 && MODE_LIST+=(tls-h2)
has_mode mtls && MODE_LIST+=(mtls)

report >"$RESULTS"

# The plot: CPU per request against the plaintext rate, one line per proxy.
if has_mode h1; then
	{
		for p in $PROXIES; do
			for r in $RATES; do echo "$p $r $(med "${S_CPU[$p/h1-$r]:--}")"; done
		done
	} >"$WORK/plot.tsv"
	"$WORK/bin/plot" -title "CPU per request, HTTP/1.1, 1 KiB, one core each ($STARTED_AT)" <"$WORK/plot.tsv" >"$WORK/plot.svg"
	if command -v chromium >/dev/null; then
		timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=800,500 \
			--screenshot="$WORK/plot.png" "file://$WORK/plot.svg" >/dev/null 2>&1 || true
	fi
	if [[ -s $WORK/plot.png ]]; then
		cp "$WORK/plot.png" "$PLOT"
		log "plot: $PLOT"
	else
		cp "$WORK/plot.svg" "${PLOT%.png}.svg"
		log "chromium missing or failed: SVG written to ${PLOT%.png}.svg"
	fi
fi
cat "$RESULTS"
