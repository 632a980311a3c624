#!/usr/bin/env bash
# The mesh benchmark kit: what a data plane costs, measured the same way for every one.
#
#   benchmarks/mesh/run.sh --local            # one machine: client → proxy → (mTLS) → proxy → server,
#                                             # kvgate, HAProxy and nginx as the two hops (about 15 min)
#   benchmarks/mesh/run.sh --local --short    # the same in seconds, and fail unless the table is complete (CI)
#   benchmarks/mesh/run.sh --cluster          # your cluster (kubectl's current context, or $KUBECONFIG):
#                                             # install each data plane in turn, measure, remove it
#   benchmarks/mesh/run.sh --cluster --short  # every step, with 10 s loads: checks the kit works on your cluster
#
# README.md beside this script says what each mode installs and removes, how long it takes, and
# every environment variable; the method is the same in both modes:
#   istio-1k        Istio's method: HTTP/1.1 GET, 1 KiB answers, 1,000 req/s, 16 connections, mTLS between the hops
#   linkerd-N       Linkerd's method: constant rate N = 20, 200, 2,000 req/s (wrk2-style, open loop)      [cluster]
#   llm             streamed chat completions to `kvgate sim`, canary split 90/10 and an authorization
#                   policy in place, time to first token measured                                         [cluster]
# The load client is `meshbench load` (beside this script): open loop, every latency measured from the
# request's scheduled send time, so queueing is not hidden. Results: a Markdown table, a PNG chart and the
# raw JSON, in one layout for every data plane.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

MODE=""
SHORT=0
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
	case $1 in
	--local) MODE=local ;;
	--cluster) MODE=cluster ;;
	--short) SHORT=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done
[[ -n $MODE ]] || { echo "run.sh: give --local or --cluster (see --help)" >&2; exit 2; }

log() { printf '[mesh] %s\n' "$*" >&2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kvgate-mesh.XXXXXX")
chmod 755 "$WORK"
PIDS=()
# Shared helpers from benchmarks/lib.sh: die, alive, stop_pid, cleanup, free_port, tree_pids, cpu_ticks, hwm_kib,
# start_bg, wait_url, loadavg, write_backend, set_priority, install_missing, haproxy_defaults.
source "$HERE/../lib.sh"

secs() { # 120s | 2m -> seconds
	case $1 in
	*s) echo "${1%s}" ;;
	*m) echo $((${1%m} * 60)) ;;
	*) die "durations end in s or m, got '$1'" ;;
	esac
}

build_meshbench() {
	(cd "$ROOT" && go build -o "$WORK/bin/meshbench" ./benchmarks/mesh/meshbench) >"$WORK/build.log" 2>&1 ||
		{ cat "$WORK/build.log" >&2; die "go build ./benchmarks/mesh/meshbench failed"; }
}

# ================================================================ --local

run_local() {
	DURATION=${DURATION:-120s}
	WARMUP=${WARMUP:-5s}
	RATE=${RATE:-1000}
	CONNS=${CONNS:-16}
	PROXIES=${PROXIES:-"kvgate haproxy nginx"}
	PROXY_CPU=${PROXY_CPU:-0}
	LOAD_CPU=${LOAD_CPU:-1}
	NICE=${NICE:-0}
	SKIP_INSTALL=${SKIP_INSTALL:-0}
	if [[ $SHORT == 1 ]]; then
		DURATION=3s WARMUP=1s
		OUT=${OUT:-$WORK/out}
	else
		OUT=${OUT:-$HERE/results/local}
	fi
	local dur_s warm_s
	dur_s=$(secs "$DURATION")
	warm_s=$(secs "$WARMUP")
	[[ $dur_s =~ ^[1-9][0-9]*$ && $warm_s =~ ^[0-9]+$ ]] || die "DURATION and WARMUP must be whole seconds or minutes"
	[[ $RATE =~ ^[1-9][0-9]*$ && $CONNS =~ ^[1-9][0-9]*$ ]] || die "RATE and CONNS must be positive integers"
	[[ $NICE =~ ^-?[0-9]+$ ]] || die "NICE must be an integer, got '$NICE'"
	for p in $PROXIES; do [[ $p == kvgate || $p == haproxy || $p == nginx ]] || die "PROXIES: unknown proxy '$p' (kvgate haproxy nginx)"; done
	INVOCATION="DURATION=$DURATION RATE=$RATE CONNS=$CONNS PROXIES=\"$PROXIES\"$([[ $NICE == 0 ]] || echo " NICE=$NICE") benchmarks/mesh/run.sh --local$([[ $SHORT == 0 ]] || echo " --short")"
	set_priority
	if [[ $SHORT == 1 ]]; then
		# CI: install nothing; a reference proxy that is not installed is left out, and without
		# nginx the backend is `meshbench serve` (kvgate's row always runs).
		local have=""
		for p in $PROXIES; do
			if [[ $p == kvgate ]] || command -v "$p" >/dev/null; then have+=" $p"; else log "$p is not installed: its row is left out of this short run"; fi
		done
		PROXIES=${have# }
		for p in curl taskset ss; do command -v "$p" >/dev/null || die "$p is missing"; done
	else
		install_missing haproxy nginx curl taskset ss
	fi
	mkdir -p "$WORK/bin" "$OUT/raw"
	rm -f "$OUT/raw/"*.json "$OUT/rows.jsonl"
	log "building kvgate and meshbench"
	(cd "$ROOT" && go build -o "$WORK/bin/kvgate" ./cmd/kvgate) >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; die "go build ./cmd/kvgate failed"; }
	build_meshbench
	local MB=$WORK/bin/meshbench

	# Identities: one CA for trust domain mesh.local, an SVID for the client-side and one for the
	# server-side proxy, each served on its own Workload API socket (a SPIRE agent's job) and
	# written as files for HAProxy and nginx, which cannot speak the Workload API. The DNS name
	# localhost is added because nginx's upstream TLS checks a host name (proxy_ssl_verify).
	local TD=mesh.local
	CLIENT_ID=spiffe://$TD/ns/bench/sa/client
	SERVER_ID=spiffe://$TD/ns/bench/sa/server
	SP=$WORK/spiffe
	mkdir -p "$SP"
	start_bg "$WORK/spiffe.log" "$MB" spiffe --dir "$SP" --id "client=$CLIENT_ID" --id "server=$SERVER_ID" --dns localhost
	local i
	for i in $(seq 100); do [[ -S $SP/server.sock && -S $SP/client.sock ]] && break; alive "$STARTED_PID" || break; sleep 0.1; done
	[[ -S $SP/server.sock ]] || { cat "$WORK/spiffe.log" >&2; die "meshbench spiffe did not start"; }

	BPORT=$(free_port)
	if command -v nginx >/dev/null; then
		BACKEND="nginx $(nginx -v 2>&1 | sed 's|.*nginx/||')"
		write_backend "$WORK/backend" "$BPORT"
		start_bg "$WORK/backend/log" "${LOAD_PFX[@]}" nginx -p "$WORK/backend" -e "$WORK/backend/error.log" -c "$WORK/backend/nginx.conf" -g 'daemon off;'
	else
		BACKEND="meshbench serve"
		mkdir -p "$WORK/backend"
		start_bg "$WORK/backend/log" "${LOAD_PFX[@]}" "$MB" serve --addr "127.0.0.1:$BPORT" --size 1024
	fi
	wait_url "http://127.0.0.1:$BPORT/1k.bin" "$STARTED_PID" || die "the backend ($BACKEND) did not start"
	DIRECT=http://127.0.0.1:$BPORT/1k.bin

	LOAD_BEFORE=$(loadavg)
	local base=$OUT/raw/direct.json
	log "no proxy: warm-up ${WARMUP}, then $DURATION at $RATE req/s over $CONNS connections"
	local_load "$DIRECT" "$warm_s" /dev/null
	local_load "$DIRECT" "$dur_s" "$base"
	"$MB" collect --setup local --data-plane "no proxy" --workload istio-1k --load "$base" >>"$OUT/rows.jsonl"
	for p in $PROXIES; do
		local_pair "$p"
		log "$p: warm-up ${WARMUP}"
		local_load "$ENTRY" "$warm_s" /dev/null
		# The baseline for added latency is taken right before the proxied run, so both see
		# the same background load on a shared machine.
		log "$p: baseline without proxies, $DURATION"
		local_load "$DIRECT" "$dur_s" "$OUT/raw/direct-before-$p.json"
		log "$p: $DURATION through both hops"
		local t0 t1 w0 w1 mem
		t0=$(($(cpu_ticks "$HOP1") + $(cpu_ticks "$HOP2")))
		w0=$(date +%s.%N)
		local_load "$ENTRY" "$dur_s" "$OUT/raw/$p.json"
		w1=$(date +%s.%N)
		t1=$(($(cpu_ticks "$HOP1") + $(cpu_ticks "$HOP2")))
		alive "$HOP1" && alive "$HOP2" || { tail -n 30 "$WORK/$p"-*/log >&2 || true; die "$p died during its run"; }
		mem=$(($(hwm_kib "$HOP1") + $(hwm_kib "$HOP2")))
		"$MB" collect --setup local --data-plane "$p" --workload istio-1k --load "$OUT/raw/$p.json" \
			--baseline "$OUT/raw/direct-before-$p.json" --procs 2 --mem-kib "$mem" \
			--cpu-seconds "$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" 'BEGIN {printf "%.4f", t / hz}')" \
			--window "$(awk -v a="$w0" -v b="$w1" 'BEGIN {printf "%.3f", b - a}')" >>"$OUT/rows.jsonl"
		stop_pid "$HOP1"
		stop_pid "$HOP2"
	done
	LOAD_AFTER=$(loadavg)
	local dps="no proxy" check=()
	for p in $PROXIES; do dps+=",$p"; done
	[[ $SHORT == 0 ]] || check=(--check --expect-workloads istio-1k --expect-data-planes "$dps")
	"$MB" report --rows "$OUT/rows.jsonl" --out "$WORK/table.md" --png "$OUT/results.png" \
		--title "kvgate mesh benchmark: one machine, two mTLS hops" "${check[@]}"
	local_report >"$OUT/results.md"
	cat "$OUT/results.md"
	log "wrote $OUT/results.md, $OUT/results.png and the raw data in $OUT/raw/ and $OUT/rows.jsonl"
	[[ $SHORT == 0 ]] || log "short run: the table is complete"
}

# local_load URL SECONDS OUTFILE: one open-loop run at RATE over CONNS connections, pinned to LOAD_CPU.
local_load() {
	[[ $2 != 0 ]] || return 0
	"${LOAD_PFX[@]}" timeout $(($2 + 30)) "$WORK/bin/meshbench" load --url "$1" --rate "$RATE" --conns "$CONNS" \
		--duration "${2}s" >"$WORK/load.json" || { cat "$WORK/load.json" >&2; die "meshbench load $1 failed"; }
	cp "$WORK/load.json" "$3"
}

# local_pair NAME: starts the two hops of NAME (client side HOP1 on ENTRY, server side HOP2 with mTLS),
# both pinned to PROXY_CPU with one worker each, and checks a request through them.
local_pair() {
	local name=$1 d1=$WORK/$1-client d2=$WORK/$1-server p1 p2
	mkdir -p "$d1" "$d2"
	p1=$(free_port)
	p2=$(free_port)
	ENTRY=http://127.0.0.1:$p1/1k.bin
	case $name in
	kvgate)
		cat >"$d1/kvgate.yaml" <<-CONF
			admin: {address: "127.0.0.1:$(free_port)"}
			accessLog: {path: "off"}
			identity: {workloadAPI: "unix://$SP/client.sock"}
			listeners:
			  - {name: outbound, address: "127.0.0.1:$p1", protocols: [http1]}
			routes:
			  - {name: to-server, backends: [{pool: server-side}]}
			pools:
			  - name: server-side
			    endpoints: ["127.0.0.1:$p2"]
			    protocol: http1
			    tls: {spiffeID: "$SERVER_ID"}
		CONF
		cat >"$d2/kvgate.yaml" <<-CONF
			admin: {address: "127.0.0.1:$(free_port)"}
			accessLog: {path: "off"}
			identity: {workloadAPI: "unix://$SP/server.sock"}
			listeners:
			  - name: inbound
			    address: "127.0.0.1:$p2"
			    protocols: [http1]
			    tls: {spiffe: true, clientAuth: require}
			routes:
			  - {name: app, backends: [{pool: app}]}
			pools:
			  - {name: app, endpoints: ["127.0.0.1:$BPORT"]}
			authorization:
			  - name: only-the-client
			    action: ALLOW
			    rules: [{from: [{principals: ["${CLIENT_ID#spiffe://}"]}]}]
		CONF
		start_bg "$d2/log" env GOMAXPROCS=1 "${PROXY_PFX[@]}" "$WORK/bin/kvgate" run --config "$d2/kvgate.yaml"
		HOP2=$STARTED_PID
		start_bg "$d1/log" env GOMAXPROCS=1 "${PROXY_PFX[@]}" "$WORK/bin/kvgate" run --config "$d1/kvgate.yaml"
		HOP1=$STARTED_PID
		;;
	haproxy)
		{
			haproxy_defaults always
			cat <<-CONF
			frontend outbound
			  bind 127.0.0.1:$p1
			  default_backend server_side
			backend server_side
			  server s 127.0.0.1:$p2 ssl crt $SP/client/combined.pem ca-file $SP/client/bundle.0.pem verify required alpn http/1.1
			CONF
		} >"$d1/haproxy.cfg"
		sed -e "s/^frontend outbound/frontend inbound/; s|bind 127.0.0.1:$p1|bind 127.0.0.1:$p2 ssl crt $SP/server/combined.pem ca-file $SP/server/bundle.0.pem verify required alpn http/1.1|" \
			-e "s/default_backend server_side/default_backend app/; s/^backend server_side/backend app/" \
			-e "s|server s 127.0.0.1:$p2 .*|server a 127.0.0.1:$BPORT|" "$d1/haproxy.cfg" >"$d2/haproxy.cfg"
		start_bg "$d2/log" "${PROXY_PFX[@]}" haproxy -db -f "$d2/haproxy.cfg"
		HOP2=$STARTED_PID
		start_bg "$d1/log" "${PROXY_PFX[@]}" haproxy -db -f "$d1/haproxy.cfg"
		HOP1=$STARTED_PID
		;;
	nginx)
		local d
		for d in "$d1" "$d2"; do mkdir -p "$d/tmp"; done
		nginx_conf "$d1" "listen 127.0.0.1:$p1;" "server 127.0.0.1:$p2;" "
			proxy_pass https://up;
			proxy_ssl_certificate $SP/client/svid.0.pem;
			proxy_ssl_certificate_key $SP/client/svid.0.key;
			proxy_ssl_trusted_certificate $SP/client/bundle.0.pem;
			proxy_ssl_verify on;
			proxy_ssl_name localhost;
			proxy_ssl_session_reuse on;"
		nginx_conf "$d2" "listen 127.0.0.1:$p2 ssl;
			ssl_certificate $SP/server/svid.0.pem;
			ssl_certificate_key $SP/server/svid.0.key;
			ssl_client_certificate $SP/server/bundle.0.pem;
			ssl_verify_client on;" "server 127.0.0.1:$BPORT;" "
			proxy_pass http://up;"
		start_bg "$d2/log" "${PROXY_PFX[@]}" nginx -p "$d2" -e "$d2/error.log" -c "$d2/nginx.conf" -g 'daemon off;'
		HOP2=$STARTED_PID
		start_bg "$d1/log" "${PROXY_PFX[@]}" nginx -p "$d1" -e "$d1/error.log" -c "$d1/nginx.conf" -g 'daemon off;'
		HOP1=$STARTED_PID
		;;
	esac
	if ! wait_url "$ENTRY" "$HOP1" || ! alive "$HOP2"; then
		tail -n 20 "$d1/log" "$d2/log" "$d1/error.log" "$d2/error.log" 2>/dev/null >&2 || true
		die "$name: no answer through both hops on $ENTRY within 15 s (logs above)"
	fi
	[[ $(curl -s "$ENTRY" | wc -c) == 1024 ]] || die "$name: the two hops do not return the 1024-byte file"
	log "$name: client side pid $HOP1 on $ENTRY, server side pid $HOP2 on 127.0.0.1:$p2 (mTLS)"
}

nginx_conf() { # dir server-listen upstream-server location-body
	cat >"$1/nginx.conf" <<-CONF
		worker_processes 1;
		pid $1/nginx.pid;
		error_log $1/error.log warn;
		events { worker_connections 4096; }
		http {
			access_log off;
			tcp_nodelay on;
			keepalive_timeout 120s;
			keepalive_requests 10000000;
			client_body_temp_path $1/tmp/body;
			proxy_temp_path $1/tmp/proxy;
			fastcgi_temp_path $1/tmp/fastcgi;
			uwsgi_temp_path $1/tmp/uwsgi;
			scgi_temp_path $1/tmp/scgi;
			upstream up { $3 keepalive 64; keepalive_requests 10000000; }
			server {
				$2
				location / {
					proxy_http_version 1.1;
					proxy_set_header Connection "";
					$4
				}
			}
		}
	CONF
}

local_report() {
	echo "# Mesh benchmark on one machine: two mTLS hops"
	echo
	echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) by \`benchmarks/mesh/run.sh --local\` (method: README.md beside this file)."
	echo
	echo "Command: \`$INVOCATION\`"
	echo
	echo "Path: meshbench load → client-side proxy (plaintext HTTP/1.1) → server-side proxy (mTLS, TLS 1.3, SPIFFE"
	echo "SVIDs of trust domain mesh.local) → $BACKEND serving 1 KiB. Istio's method: $RATE req/s, $CONNS connections,"
	echo "$DURATION per run, open loop, latency from each request's scheduled send time. Both hops pinned to core"
	echo "$PROXY_CPU with one worker each (\`GOMAXPROCS=1\`, \`nbthread 1\`, \`worker_processes 1\`); client and backend"
	echo "on core $LOAD_CPU. kvgate takes its SVIDs from a Workload API socket per hop (\`meshbench spiffe\`, a stand-in for"
	echo "a SPIRE agent), checks the peer's SPIFFE ID on both sides and applies an ALLOW policy on the client's identity;"
	echo "HAProxy and nginx read the same SVIDs as files and verify the peer's chain only."
	echo "Added p90/p99 = the row's percentile minus that of a run straight to the backend taken just before it."
	echo "vCPU = both hops' CPU time (utime+stime from /proc) ÷ the run's wall time; per 1k req/s = vCPU ÷ (achieved req/s ÷ 1000)."
	echo "Memory = both hops' peak RSS."
	echo "Load average before / after: $LOAD_BEFORE / $LOAD_AFTER ($(nproc) CPUs, shared with other work)."
	echo
	cat "$WORK/table.md"
	echo
	echo "![chart](results.png)"
	echo
	echo "Raw data: \`raw/*.json\` (meshbench load results) and \`rows.jsonl\` (the rows above)."
	echo
	echo "## Versions"
	echo
	echo "- kvgate: $("$WORK/bin/kvgate" version 2>&1 | head -n 1) (commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)); $(go version)"
	! command -v haproxy >/dev/null || echo "- haproxy: $(haproxy -v 2>&1 | head -n 1)"
	! command -v nginx >/dev/null || echo "- nginx: $(nginx -v 2>&1 | head -n 1)"
	echo "- kernel: $(uname -srm); CPUs: $(nproc); $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
}

# ================================================================ --cluster

. "$HERE/cluster.sh"

trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP
case $MODE in
local) run_local ;;
cluster) run_cluster ;;
esac
