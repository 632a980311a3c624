#!/usr/bin/env bash
# Whole-process overhead of kvgate against HAProxy, nginx and Caddy on one machine.
#
# One nginx static backend serves a 1 KiB file; each proxy in turn is started alone,
# pinned to one core, with access logs off and keep-alive to the backend, and measured:
#   - max throughput with wrk (closed loop, -t1 -cCONNS -dDURATION),
#   - proxy CPU-seconds per 1000 requests at that max (utime+stime from /proc, whole process tree),
#   - at a fixed open-loop RATE with vegeta: p50, p99 and CPU-seconds per 1000 requests,
#   - peak RSS (VmHWM summed over the process tree),
#   - added p99 = proxy p99 - direct p99 at the fixed rate.
# See README.md beside this file for the method and its limits.
#
# Environment (all optional):
#   DURATION=10s  length of each measured wrk / vegeta run (s or m suffix)
#   RUNS=1        repeats per proxy; the table shows the median of each column
#   RATE=2000     fixed open-loop rate, requests per second
#   CONNS=50      wrk connections
#   ROUTES=20     also measure kvgate with a ROUTES-rule route table (ROUTES-1 misses, then a catch-all)
#   PROXIES="haproxy nginx caddy kvgate"   which proxy rows to run (direct always runs)
#   PROXY_CPU=0 LOAD_CPU=1   cores for the proxy and for backend + load generator
#   SKIP_INSTALL=1           never call apt-get / go install
#   NICE=-20                 give this run's scheduler group that niceness (root only). With autogroup
#                            scheduling (the default on most kernels) every session is one group, so
#                            a per-process nice would not reach past it; this sets /proc/PID/autogroup
#                            for the script's session and restores 0 on exit, else falls back to
#                            `nice -n NICE` on each process. On a machine shared with other work this
#                            keeps their CPU out of the numbers (at their expense for the run's length).
#   RESULTS=path             where to write the Markdown (default results.md beside this script)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

DURATION=${DURATION:-10s}
RUNS=${RUNS:-1}
RATE=${RATE:-2000}
CONNS=${CONNS:-50}
ROUTES=${ROUTES:-}
PROXIES=${PROXIES:-"haproxy nginx caddy kvgate"}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SKIP_INSTALL=${SKIP_INSTALL:-0}
NICE=${NICE:-0}
RESULTS=${RESULTS:-$HERE/results.md}
CADDY_MODULE=github.com/caddyserver/caddy/v2/cmd/caddy@v2.11.9
VEGETA_MODULE=github.com/tsenart/vegeta/v12@v12.13.0
INVOCATION="DURATION=$DURATION RUNS=$RUNS RATE=$RATE CONNS=$CONNS${ROUTES:+ ROUTES=$ROUTES}$([[ $NICE == 0 ]] || echo " NICE=$NICE") PROXIES=\"$PROXIES\" benchmarks/overhead/run.sh"

GOBIN_DIR=$(go env GOBIN 2>/dev/null || true)
[[ -n $GOBIN_DIR ]] || GOBIN_DIR="$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"
export PATH="$GOBIN_DIR:$PATH"

log() { printf '[overhead] %s\n' "$*" >&2; }
# Shared helpers from benchmarks/lib.sh: die, stop_pid, cleanup, tree_pids, hwm_kib, haproxy_defaults, fmt, busy, set_priority, and the state USED_PORTS, EPHEMERAL_LOW, CLK_TCK, STARTED_PID.
# It also uses lib.sh's write_backend, and defines its own alive, free_port, cpu_ticks, start_bg, median below; they replace lib.sh's.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$RUNS'"
[[ $RATE =~ ^[1-9][0-9]*$ ]] || die "RATE must be a positive integer, got '$RATE'"
[[ $NICE =~ ^-?[0-9]+$ ]] || die "NICE must be an integer, got '$NICE'"
case $DURATION in
*s) DUR_S=${DURATION%s} ;;
*m) DUR_S=$((${DURATION%m} * 60)) ;;
*) die "DURATION must end in s or m, got '$DURATION'" ;;
esac
[[ $DUR_S =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a whole number of seconds or minutes, got '$DURATION'"
# Every load-generator call is bounded by this, whatever happens to the server.
LOAD_TIMEOUT=$((DUR_S + 30))

# ---------------------------------------------------------------- cleanup

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kvgate-overhead.XXXXXX")
chmod 755 "$WORK" # nginx workers run as an unprivileged user and must read the backend file
PIDS=()


trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

set_priority # NICE_PFX, PROXY_PFX, LOAD_PFX (lib.sh)
# pin CPU CMD...: run CMD in the foreground on core CPU, at the requested niceness.
pin() {
	local cpu=$1
	shift
	"${NICE_PFX[@]}" taskset -c "$cpu" "$@"
}

# ---------------------------------------------------------------- install

APT_UPDATED=0
apt_install() {
	[[ $SKIP_INSTALL == 1 ]] && return 1
	command -v apt-get >/dev/null || return 1
	if [[ $APT_UPDATED == 0 ]]; then
		log "apt-get update"
		timeout 600 apt-get update -q >&2 || return 1
		APT_UPDATED=1
	fi
	log "apt-get install -y $*"
	DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q "$@" >&2
}

CADDY_NOTE=""
ensure_tools() {
	local missing=() t
	for t in haproxy nginx wrk jq curl taskset ss; do
		command -v "$t" >/dev/null || missing+=("$t")
	done
	if ((${#missing[@]})); then
		local pkgs=()
		for t in "${missing[@]}"; do
			case $t in taskset) pkgs+=(util-linux) ;; ss) pkgs+=(iproute2) ;; *) pkgs+=("$t") ;; esac
		done
		apt_install "${pkgs[@]}" || die "missing ${missing[*]} and could not install them"
	fi
	if ! command -v vegeta >/dev/null; then
		[[ $SKIP_INSTALL == 1 ]] && die "vegeta missing (go install $VEGETA_MODULE)"
		log "go install $VEGETA_MODULE"
		timeout 900 go install "$VEGETA_MODULE" >&2 || die "go install $VEGETA_MODULE failed"
	fi
	if ! command -v caddy >/dev/null && [[ $SKIP_INSTALL != 1 ]]; then
		log "go install $CADDY_MODULE (a large module graph: several minutes on 2 cores)"
		if ! timeout 1500 go install "$CADDY_MODULE" >"$WORK/caddy-build.log" 2>&1; then
			tail -n 20 "$WORK/caddy-build.log" >&2
			log "building Caddy from source failed; falling back to Debian's caddy package"
			CADDY_NOTE="built from $CADDY_MODULE failed (see log above); used Debian's caddy package instead"
			apt_install caddy || CADDY_NOTE="Caddy could not be built nor installed: row skipped"
		fi
	fi
}

# ---------------------------------------------------------------- helpers

# free_port prints a TCP port on 127.0.0.1 that nothing listens on now, below the kernel's
# ephemeral range, so no client socket of the load generators can take it between runs.
free_port() {
	local p i
	for i in $(seq 200); do
		p=$((10000 + RANDOM % (EPHEMERAL_LOW - 10000)))
		[[ $USED_PORTS == *" $p "* ]] && continue
		if [[ -z $(ss -Hltn "sport = :$p") ]]; then
			USED_PORTS+="$p "
			echo "$p"
			return 0
		fi
	done
	die "no free port found"
}


# cpu_ticks prints utime+stime+cutime+cstime summed over the process tree, in clock ticks.
cpu_ticks() {
	local total=0 p s f
	for p in $(tree_pids "$1"); do
		s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		s=${s##*) } # drop "pid (comm) " — comm may hold spaces
		read -ra f <<<"$s"
		total=$((total + f[11] + f[12] + f[13] + f[14]))
	done
	echo "$total"
}

# alive PID: the process exists and is not a zombie (a dead child stays a zombie until waited for).
alive() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	[[ ${s:0:1} != Z ]]
}

# crash_note NAME PHASE: the note for a proxy that died, with the first panic or error line of its log.
crash_note() {
	local line
	line=$(grep -m1 -E '^(panic|fatal error)|"level":"ERROR"' "$WORK/$1/log" 2>/dev/null | cut -c1-200 || true)
	log "$1: CRASHED during $2; log tail:"
	tail -n 30 "$WORK/$1/log" >&2 || true
	echo "CRASHED during $2: ${line:-no panic line in its log}"
}

wait_http() {
	local url=$1 pid=$2 i
	for i in $(seq 150); do
		alive "$pid" || return 1
		curl -sf -o /dev/null --max-time 1 "$url" && return 0
		sleep 0.1
	done
	return 1
}

# start_bg LOG CMD... starts CMD in the background, records its PID in STARTED_PID.
start_bg() {
	local logf=$1
	shift
	"$@" >"$logf" 2>&1 &
	STARTED_PID=$!
	PIDS+=("$STARTED_PID")
}

sub() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || a == "" || b == "") print "-"; else printf "%.3f", a - b }'; }
median() { # median of the arguments; "-" if any is empty or "-"
	local v
	for v in "$@"; do [[ -n $v && $v != - ]] || { echo -; return; }; done
	printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}

# ---------------------------------------------------------------- measurement

# wrk_run URL CPU: prints "requests rps errors" for one max-throughput run.
wrk_run() {
	local url=$1 cpu=$2 out reqs rps errs
	out=$(pin "$cpu" timeout "$LOAD_TIMEOUT" wrk -t1 -c"$CONNS" -d"$DURATION" --timeout 5s "$url" 2>&1) || {
		log "wrk failed: $out"
		echo "- - wrk-failed"
		return
	}
	printf '%s\n' "$out" >>"$WORK/wrk.log"
	reqs=$(awk '/requests in/ {print $1; exit}' <<<"$out")
	rps=$(awk '/^Requests\/sec:/ {print $2; exit}' <<<"$out")
	errs=$(awk '/Non-2xx|Socket errors/ {gsub(/^ +/, ""); printf "%s; ", $0}' <<<"$out")
	echo "${reqs:--} ${rps:--} ${errs:+[${errs// /_}]}"
}

# vegeta_run URL: writes vegeta's JSON report to stdout.
vegeta_run() {
	local url=$1 bin=$WORK/vegeta.bin
	echo "GET $url" | pin "$LOAD_CPU" timeout "$LOAD_TIMEOUT" \
		vegeta attack -rate="$RATE" -duration="$DURATION" -keepalive=true -http2=false -timeout=5s >"$bin"
	vegeta report -type=json "$bin"
}

per1k() { # ticks requests -> CPU-seconds per 1000 requests
	awk -v t="$1" -v r="$2" -v hz="$CLK_TCK" 'BEGIN { if (r > 0) printf "%.4f", t / hz / r * 1000; else print "-" }'
}

declare -A R_ADDED R_ADDED50 R_RPS R_CPUMAX R_CPURATE R_P50 R_P99 R_RSS R_RATE R_SUCC R_NOTE
ROWS=()

# measure NAME URL PID: runs RUNS rounds against URL while PID (0 = none) is the proxy.
measure() {
	local name=$1 url=$2 pid=$3 wrkcpu=$PROXY_CPU
	local rps=() cmax=() crate=() p50=() p99=() arate=() succ=() added=() added50=() run t0 t1 reqs r errs js base base50 notes="" crashed=""
	[[ $pid == 0 ]] || wrkcpu=$LOAD_CPU
	log "$name: warm-up 2s"
	pin "$wrkcpu" timeout 30 wrk -t1 -c"$CONNS" -d2s "$url" >/dev/null 2>&1 || true
	for run in $(seq "$RUNS"); do
		log "$name: run $run/$RUNS — wrk -t1 -c$CONNS -d$DURATION"
		[[ $pid == 0 ]] || t0=$(cpu_ticks "$pid")
		read -r reqs r errs < <(wrk_run "$url" "$wrkcpu")
		[[ $pid == 0 ]] || t1=$(cpu_ticks "$pid")
		rps+=("$r")
		if [[ $pid == 0 || $reqs == - ]]; then cmax+=(-); else cmax+=("$(per1k $((t1 - t0)) "$reqs")"); fi
		[[ -z $errs ]] || notes+="wrk run $run: ${errs//_/ } "
		if [[ $pid != 0 ]] && ! alive "$pid"; then
			crashed=$(crash_note "$name" "wrk run $run")
			cmax[-1]=-
			break
		fi

		base=- base50=-
		if [[ $pid != 0 ]]; then
			# The baseline for added p99 is taken right before this row's own run, so
			# both see the same background load.
			log "$name: run $run/$RUNS — vegeta baseline straight to the backend"
			if js=$(vegeta_run "$BACKEND_URL"); then
				base=$(jq -r '.latencies["99th"] / 1e6' <<<"$js")
				base50=$(jq -r '.latencies["50th"] / 1e6' <<<"$js")
			fi
		fi
		log "$name: run $run/$RUNS — vegeta -rate=$RATE -duration=$DURATION"
		[[ $pid == 0 ]] || t0=$(cpu_ticks "$pid")
		if js=$(vegeta_run "$url"); then
			[[ $pid == 0 ]] || t1=$(cpu_ticks "$pid")
			reqs=$(jq -r '.requests' <<<"$js")
			p50+=("$(jq -r '.latencies["50th"] / 1e6' <<<"$js")")
			p99+=("$(jq -r '.latencies["99th"] / 1e6' <<<"$js")")
			added+=("$(sub "${p99[-1]}" "$base")")
			added50+=("$(sub "${p50[-1]}" "$base50")")
			arate+=("$(jq -r '.rate | floor' <<<"$js")")
			succ+=("$(jq -r '.success * 100' <<<"$js")")
			if [[ $pid == 0 ]]; then crate+=(-); else crate+=("$(per1k $((t1 - t0)) "$reqs")"); fi
			printf '%s\n' "$js" >>"$WORK/vegeta.log"
			errs=$(jq -r '(.errors // [])[:3] | join("; ")' <<<"$js")
			[[ -z $errs ]] || notes+="vegeta run $run errors: $errs "
		else
			log "$name: vegeta failed"
			p50+=(-) p99+=(-) arate+=(-) succ+=(-) crate+=(-) added+=(-) added50+=(-)
		fi
		if [[ $pid != 0 ]] && ! alive "$pid"; then
			crashed=$(crash_note "$name" "vegeta run $run")
			crate[-1]=-
			break
		fi
	done
	R_RPS[$name]=$(median "${rps[@]}")
	R_CPUMAX[$name]=$(median "${cmax[@]}")
	R_CPURATE[$name]=$(median "${crate[@]}")
	R_P50[$name]=$(median "${p50[@]}")
	R_P99[$name]=$(median "${p99[@]}")
	R_ADDED[$name]=- R_ADDED50[$name]=-
	[[ $pid == 0 ]] || R_ADDED[$name]=$(median "${added[@]}") R_ADDED50[$name]=$(median "${added50[@]}")
	R_RATE[$name]=$(median "${arate[@]}")
	R_SUCC[$name]=$(median "${succ[@]}")
	if [[ $pid == 0 || -n $crashed ]]; then R_RSS[$name]=-; else R_RSS[$name]=$(awk -v k="$(hwm_kib "$pid")" 'BEGIN {printf "%.1f", k / 1024}'); fi
	R_NOTE[$name]="${crashed:+$crashed; }$notes"
	if [[ -n $crashed ]]; then
		R_P50[$name]=- R_P99[$name]=- R_RATE[$name]=- R_SUCC[$name]=-
		R_CPURATE[$name]=- R_ADDED[$name]=- R_ADDED50[$name]=-
	fi
	ROWS+=("$name")
}

skip_row() {
	R_NOTE[$1]="skipped: $2"
	ROWS+=("$1")
	log "$1: skipped: $2"
}

# ---------------------------------------------------------------- configs

write_haproxy() { # dir port backendport
	mkdir -p "$1"
	{
		haproxy_defaults safe
		cat <<EOF
frontend bench
	bind 127.0.0.1:$2
	default_backend backend
backend backend
	server b1 127.0.0.1:$3
EOF
	} >"$1/haproxy.cfg"
}

write_nginx_proxy() { # dir port backendport
	mkdir -p "$1/tmp"
	cat >"$1/nginx.conf" <<EOF
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_timeout 120s;
	keepalive_requests 10000000;
	client_body_temp_path $1/tmp/body;
	proxy_temp_path $1/tmp/proxy;
	fastcgi_temp_path $1/tmp/fastcgi;
	uwsgi_temp_path $1/tmp/uwsgi;
	scgi_temp_path $1/tmp/scgi;
	upstream backend {
		server 127.0.0.1:$3;
		keepalive 64;
		keepalive_requests 10000000;
	}
	server {
		listen 127.0.0.1:$2;
		location / {
			proxy_pass http://backend;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
EOF
}

write_caddy() { # dir port backendport
	mkdir -p "$1"
	cat >"$1/Caddyfile" <<EOF
{
	admin off
	auto_https off
	persist_config off
}
http://127.0.0.1:$2 {
	reverse_proxy 127.0.0.1:$3
}
EOF
}

write_kvgate() { # dir port adminport backendport routes
	local i
	mkdir -p "$1"
	{
		echo "admin: {address: 127.0.0.1:$3}"
		echo 'accessLog: {path: "off"}'
		echo "listeners:"
		echo "  - {name: bench, address: 127.0.0.1:$2, protocols: [http1]}"
		echo "routes:"
		for ((i = 1; i < ${5:-1}; i++)); do
			if ((i % 2)); then
				echo "  - {name: miss-$i, matches: [{headers: [{name: x-bench-route, value: \"r$i\"}]}], backends: [{pool: backend}]}"
			else
				echo "  - {name: miss-$i, matches: [{path: {type: PathPrefix, value: /never-$i/}}], backends: [{pool: backend}]}"
			fi
		done
		echo "  - {name: all, backends: [{pool: backend}]}"
		echo "pools:"
		echo "  - {name: backend, endpoints: [\"127.0.0.1:$4\"]}"
	} >"$1/kvgate.yaml"
}

# ---------------------------------------------------------------- proxies

# run_proxy NAME: starts the proxy NAME alone, measures it, stops it.
run_proxy() {
	local name=$1 dir=$WORK/$1 port pid aport
	port=$(free_port)
	case $name in
	haproxy)
		write_haproxy "$dir" "$port" "$BPORT"
		start_bg "$dir/log" "${PROXY_PFX[@]}" haproxy -db -f "$dir/haproxy.cfg"
		;;
	nginx)
		write_nginx_proxy "$dir" "$port" "$BPORT"
		start_bg "$dir/log" "${PROXY_PFX[@]}" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;'
		;;
	caddy)
		command -v caddy >/dev/null || { skip_row caddy "${CADDY_NOTE:-caddy not installed}"; return; }
		write_caddy "$dir" "$port" "$BPORT"
		start_bg "$dir/log" env GOMAXPROCS=1 XDG_CONFIG_HOME="$dir" XDG_DATA_HOME="$dir" \
			"${PROXY_PFX[@]}" caddy run --adapter caddyfile --config "$dir/Caddyfile"
		;;
	kvgate | kvgate-*-routes)
		[[ -n $KVGATE_BIN ]] || { skip_row "$name" "$KVGATE_SKIP"; return; }
		aport=$(free_port)
		local routes=1
		[[ $name == kvgate ]] || routes=$ROUTES
		write_kvgate "$dir" "$port" "$aport" "$BPORT" "$routes"
		start_bg "$dir/log" env GOMAXPROCS=1 "${PROXY_PFX[@]}" "$KVGATE_BIN" run --config "$dir/kvgate.yaml"
		;;
	*) die "unknown proxy $name" ;;
	esac
	pid=$STARTED_PID
	if ! wait_http "http://127.0.0.1:$port/1k.bin" "$pid"; then
		tail -n 20 "$dir/log" >&2 || true
		stop_pid "$pid"
		skip_row "$name" "did not serve http://127.0.0.1:$port/1k.bin within 15s (log tail above)"
		return
	fi
	log "$name: pid $pid ($(cat "/proc/$pid/comm")) on 127.0.0.1:$port"
	measure "$name" "http://127.0.0.1:$port/1k.bin" "$pid"
	stop_pid "$pid"
}

# ---------------------------------------------------------------- main

ensure_tools

KVGATE_BIN="" KVGATE_SKIP=""
if [[ " $PROXIES " == *" kvgate "* ]]; then
	if [[ ! -d $ROOT/cmd/kvgate ]]; then
		KVGATE_SKIP="no cmd/kvgate in this checkout yet"
	elif (cd "$ROOT" && go build -o "$WORK/bin/kvgate" ./cmd/kvgate) >"$WORK/kvgate-build.log" 2>&1; then
		KVGATE_BIN=$WORK/bin/kvgate
	else
		tail -n 20 "$WORK/kvgate-build.log" >&2
		KVGATE_SKIP="go build ./cmd/kvgate failed (log above)"
	fi
fi

# modversion TOOL prints the Go module and version a binary was built from ("not a go install build" otherwise).
modversion() {
	local v
	v=$(go version -m "$(command -v "$1")" 2>/dev/null | awk '$1 == "mod" {print $2, $3; exit}' || true)
	echo "${v:-not a go install build}"
}

versions() {
	echo "- haproxy: $(haproxy -v 2>&1 | head -n 1)"
	echo "- nginx: $(nginx -v 2>&1 | head -n 1)"
	if command -v caddy >/dev/null; then echo "- caddy: $(caddy version 2>&1 | head -n 1) [$(modversion caddy)]${CADDY_NOTE:+ ($CADDY_NOTE)}"; else echo "- caddy: not installed${CADDY_NOTE:+ ($CADDY_NOTE)}"; fi
	echo "- wrk: $(wrk -v 2>&1 | head -n 1 || true)"
	echo "- vegeta: $(modversion vegeta) ($(vegeta -version 2>&1 | awk '/Runtime/ {print $2, $3}'))"
	echo "- go: $(go version)"
	if [[ -n $KVGATE_BIN ]]; then echo "- kvgate: $("$KVGATE_BIN" version 2>&1 | head -n 1) (commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown))"; else echo "- kvgate: not built ($KVGATE_SKIP)"; fi
	echo "- kernel: $(uname -srm); CPUs: $(nproc); $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
}

log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

BPORT=$(free_port)
write_backend "$WORK/backend" "$BPORT"
start_bg "$WORK/backend/log" "${LOAD_PFX[@]}" nginx -p "$WORK/backend" -e "$WORK/backend/error.log" -c "$WORK/backend/nginx.conf" -g 'daemon off;'
BACKEND_PID=$STARTED_PID
wait_http "http://127.0.0.1:$BPORT/1k.bin" "$BACKEND_PID" || { cat "$WORK/backend/log" "$WORK/backend/error.log" >&2 || true; die "backend nginx did not start"; }
[[ $(curl -s "http://127.0.0.1:$BPORT/1k.bin" | wc -c) == 1024 ]] || die "backend does not serve 1024 bytes"
log "backend: nginx pid $BACKEND_PID on 127.0.0.1:$BPORT"

BACKEND_URL="http://127.0.0.1:$BPORT/1k.bin"
measure direct "$BACKEND_URL" 0
for p in $PROXIES; do
	run_proxy "$p"
	if [[ $p == kvgate && -n $ROUTES ]]; then run_proxy "kvgate-$ROUTES-routes"; fi
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
pratio() { # ratio of two added latencies; a difference at or below zero is baseline noise, not a result
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "n/a"; else if (a <= 0 || b <= 0) print "n/a (an added p99 at or below zero: the baseline moved more than the proxy added; rerun)"; else printf "%.2f", a / b }'
}

report() {
	local n
	echo "# kvgate overhead against HAProxy, nginx and Caddy"
	echo
	echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) by \`benchmarks/overhead/run.sh\` (see README.md for the method)."
	echo
	echo "Command: \`$INVOCATION\`"
	echo
	echo "Each proxy pinned to core $PROXY_CPU (one worker / thread / GOMAXPROCS=1), backend nginx and load generators on core $LOAD_CPU;"
	echo "1 KiB static file, HTTP/1.1 plaintext, keep-alive both sides, access logs off. ${RUNS} run(s) per row, median shown."
	[[ $NICE == 0 ]] || echo "Scheduling: niceness $NICE applied $([[ $AUTOGROUP_SET == 1 ]] && echo "to the run's autogroup" || echo "to each process") so other work on the machine does not take the cores mid-run."
	echo "CPU-s/1k req equals proxy CPU-milliseconds per request. Load average before/after: $LOAD_BEFORE / $LOAD_AFTER (other work shares this machine)."
	echo
	echo "| proxy | req/s max (wrk -c$CONNS) | CPU-s/1k req at max | CPU-s/1k req at $RATE rps | p50 ms | p99 ms | added p50 ms | added p99 ms | peak RSS MiB | proxy core busy at max |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for n in "${ROWS[@]}"; do
		if [[ ${R_NOTE[$n]:-} == skipped:* ]]; then
			echo "| $n | ${R_NOTE[$n]} | | | | | | | | |"
			continue
		fi
		local label=$n
		[[ ${R_NOTE[$n]:-} != CRASHED* ]] || label="$n (crashed, see notes)"
		local added=${R_ADDED[$n]:--}
		echo "| $label | $(fmt "${R_RPS[$n]}" %.0f) | ${R_CPUMAX[$n]} | ${R_CPURATE[$n]} | $(fmt "${R_P50[$n]}" %.3f) | $(fmt "${R_P99[$n]}" %.3f) | ${R_ADDED50[$n]:--} | $added | ${R_RSS[$n]} | $(busy "${R_CPUMAX[$n]}" "${R_RPS[$n]}") |"
	done
	echo
	echo "Fixed-rate sanity (vegeta): achieved rate and success per row."
	echo
	echo "| proxy | achieved req/s | success % | notes |"
	echo "|---|---:|---:|---|"
	for n in "${ROWS[@]}"; do
		[[ ${R_NOTE[$n]:-} == skipped:* ]] && continue
		echo "| $n | ${R_RATE[$n]} | $(fmt "${R_SUCC[$n]}" %.2f) | ${R_NOTE[$n]:-} |"
	done
	echo
	local k=kvgate h=haproxy c=caddy
	echo "Targets (kvgate ÷ peer):"
	echo
	echo "- CPU per request at max, kvgate ÷ HAProxy: $(ratio "${R_CPUMAX[$k]:--}" "${R_CPUMAX[$h]:--}") (target ≤ 2); at $RATE rps: $(ratio "${R_CPURATE[$k]:--}" "${R_CPURATE[$h]:--}")"
	echo "- CPU per request at max, kvgate ÷ Caddy: $(ratio "${R_CPUMAX[$k]:--}" "${R_CPUMAX[$c]:--}") (target ≤ 0.5); at $RATE rps: $(ratio "${R_CPURATE[$k]:--}" "${R_CPURATE[$c]:--}")"
	echo "- added p50, kvgate ÷ HAProxy: $(pratio "${R_ADDED50[$k]:--}" "${R_ADDED50[$h]:--}") (no target; steadier than p99 on a shared machine)"
	echo "- added p99, kvgate ÷ HAProxy: $(pratio "${R_ADDED[$k]:--}" "${R_ADDED[$h]:--}") (target ≤ 2; kvgate ${R_ADDED[$k]:--} ms, HAProxy ${R_ADDED[$h]:--} ms)"
	echo "- kvgate peak RSS: ${R_RSS[$k]:-n/a} MiB (target < 32 MiB)"
	echo
	echo "## Versions"
	echo
	versions
}

report >"$RESULTS"
cat "$RESULTS"
