# Shell functions shared by the benchmark scripts (benchmarks/tls/run.sh,
# benchmarks/h3/run.sh, benchmarks/overhead/run.sh). Source it after defining
# log, and the globals the functions read: WORK (temp dir), PIDS (started
# processes). Sourcing it sets the helpers' own state (USED_PORTS,
# EPHEMERAL_LOW, CLK_TCK, STARTED_PID) and starts nothing; set_priority and
# install_missing are for the script to call.

die() { log "error: $*"; exit 1; }

alive() { # PID exists and is not a zombie
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	[[ ${s:0:1} != Z ]]
}

stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 50); do
		alive "$pid" || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
	[[ $AUTOGROUP_SET == 0 ]] || echo 0 >"/proc/$$/autogroup" 2>/dev/null || true
	rm -rf "$WORK"
}

free_port() { # a TCP port below the ephemeral range that nothing listens on
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

tree_pids() {
	local pid=$1 c
	echo "$pid"
	for c in $(pgrep -P "$pid" || true); do tree_pids "$c"; done
}

cpu_ticks() { # utime+stime+cutime+cstime over the process tree, in clock ticks
	local total=0 p s f
	for p in $(tree_pids "$1"); do
		s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		s=${s##*) }
		read -ra f <<<"$s"
		total=$((total + f[11] + f[12] + f[13] + f[14]))
	done
	echo "$total"
}

hwm_kib() {
	local total=0 p v
	for p in $(tree_pids "$1"); do
		v=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
		total=$((total + ${v:-0}))
	done
	echo "$total"
}

start_bg() { # LOG CMD...
	local logf=$1
	shift
	"$@" >"$logf" 2>&1 &
	STARTED_PID=$!
	PIDS+=("$STARTED_PID")
}

wait_url() { # URL PID [curl args...]
	local url=$1 pid=$2 i
	shift 2
	for i in $(seq 150); do
		alive "$pid" || return 1
		curl -sf -o /dev/null --max-time 1 "$@" "$url" && return 0
		sleep 0.1
	done
	return 1
}

median() {
	local v
	for v in "$@"; do [[ -n $v && $v != - ]] || { echo -; return; }; done
	printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

write_backend() { # dir port
	mkdir -p "$1/www" "$1/tmp"
	head -c 1024 /dev/zero | tr '\0' 'k' >"$1/www/1k.bin"
	chmod -R a+rX "$1"
	cat >"$1/nginx.conf" <<CONF
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	sendfile on;
	tcp_nodelay on;
	keepalive_timeout 120s;
	keepalive_requests 10000000;
	client_body_temp_path $1/tmp/body;
	proxy_temp_path $1/tmp/proxy;
	fastcgi_temp_path $1/tmp/fastcgi;
	uwsgi_temp_path $1/tmp/uwsgi;
	scgi_temp_path $1/tmp/scgi;
	default_type application/octet-stream;
	server {
		listen 127.0.0.1:$2;
		location / { root $1/www; }
	}
}
CONF
}

haproxy_defaults() { # http-reuse policy: the global and defaults sections every haproxy baseline config starts with
	cat <<CONF
global
	nbthread 1
	maxconn 4096
defaults
	mode http
	option http-keep-alive
	http-reuse $1
	timeout connect 5s
	timeout client 60s
	timeout server 60s
CONF
}

med() { median ${1}; } # word-split the space-separated samples
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
paired() { # "a1 a2 .." "b1 b2 ..": median over rounds of a_i / b_i (rounds are interleaved, so each pair saw the same background load)
	local -a a b r=()
	local i x
	read -ra a <<<"$1"
	read -ra b <<<"$2"
	((${#a[@]} && ${#a[@]} == ${#b[@]})) || { echo n/a; return; }
	for i in "${!a[@]}"; do
		x=$(ratio "${a[i]}" "${b[i]}")
		[[ $x != n/a ]] || { echo n/a; return; }
		r+=("$x")
	done
	printf '%.2f (rounds: %s)' "$(median "${r[@]}")" "${r[*]}"
}

fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v == "-" || v == "") print "-"; else printf f, v }'; }

busy() { awk -v c="$1" -v r="$2" 'BEGIN { if (c == "-" || r == "-") print "-"; else printf "%.0f%%", c * r / 10 }'; }

# ---------------------------------------------------------------- state and setup

USED_PORTS=" " # ports free_port handed out in this run
EPHEMERAL_LOW=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
((EPHEMERAL_LOW > 12000)) || EPHEMERAL_LOW=32768
CLK_TCK=$(getconf CLK_TCK)
STARTED_PID="" # set by start_bg
AUTOGROUP_SET=0 # set by set_priority; read by cleanup

# set_priority applies NICE (0 = none) to the run, raising its autogroup when the kernel allows it
# (AUTOGROUP_SET=1) and otherwise prefixing each process with nice; it sets NICE_PFX, and
# PROXY_PFX and LOAD_PFX that pin servers to PROXY_CPU and load generators to LOAD_CPU. The
# prefixes exec, so $! of a background server is the server's own PID.
set_priority() {
	AUTOGROUP_SET=0
	NICE_PFX=()
	if [[ $NICE != 0 ]]; then
		if [[ -w /proc/$$/autogroup ]] && echo "$NICE" >"/proc/$$/autogroup" 2>/dev/null; then
			AUTOGROUP_SET=1
		else
			NICE_PFX=(nice -n "$NICE")
		fi
	fi
	PROXY_PFX=("${NICE_PFX[@]}" taskset -c "$PROXY_CPU")
	LOAD_PFX=("${NICE_PFX[@]}" taskset -c "$LOAD_CPU")
}

# install_missing TOOL...: installs with apt-get the tools not on PATH (taskset and ss from their
# Debian packages); with SKIP_INSTALL=1 or without apt-get it stops the run naming them.
install_missing() {
	local missing=() t pkgs=()
	for t in "$@"; do
		command -v "$t" >/dev/null || missing+=("$t")
	done
	((${#missing[@]})) || return 0
	[[ $SKIP_INSTALL != 1 ]] && command -v apt-get >/dev/null || die "missing ${missing[*]}"
	for t in "${missing[@]}"; do
		case $t in taskset) pkgs+=(util-linux) ;; ss) pkgs+=(iproute2) ;; *) pkgs+=("$t") ;; esac
	done
	timeout 600 apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q "${pkgs[@]}" >&2 || die "could not install ${pkgs[*]}"
}
