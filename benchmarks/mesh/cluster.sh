# run.sh --cluster: sourced by run.sh, which defines log, die, WORK, SHORT, secs and build_meshbench.
# Installs one data plane at a time into its own namespace, runs the workloads, removes it.
# Everything it installs is listed in INSTALLED and removed on exit, interrupt or failure.

# Pinned versions; each may be overridden from the environment.
ISTIO_VERSION=${ISTIO_VERSION:-1.24.0}           # the release of Istio's published performance figures
LINKERD_VERSION=${LINKERD_VERSION:-edge-25.4.4}  # must match the linkerd CLI on PATH (`linkerd version --client --short`)
GATEWAY_API_VERSION=${GATEWAY_API_VERSION:-v1.2.1} # installed only when the cluster has no Gateway API CRDs
ISTIO_CHARTS=${ISTIO_CHARTS:-https://istio-release.storage.googleapis.com/charts}

cluster_env() {
	KUBECTL=${KUBECTL:-kubectl}
	HELM=${HELM:-helm}
	LINKERD=${LINKERD:-linkerd}
	DATA_PLANES=${DATA_PLANES:-"none kvgate ambient waypoint linkerd"}
	WORKLOADS=${WORKLOADS:-"istio linkerd llm"}
	DURATION=${DURATION:-120s}             # Istio's method
	LINKERD_DURATION=${LINKERD_DURATION:-60s}
	LINKERD_RATES=${LINKERD_RATES:-"20 200 2000"}
	LINKERD_CONNS=${LINKERD_CONNS:-100}    # the connection count of Linkerd's 2025 benchmark
	LLM_DURATION=${LLM_DURATION:-60s}
	LLM_RATE=${LLM_RATE:-10}
	LLM_CONNS=${LLM_CONNS:-64}
	LLM_MAX_TOKENS=${LLM_MAX_TOKENS:-64}
	WARMUP=${WARMUP:-10s}
	TRUST_DOMAIN=${TRUST_DOMAIN:-cluster.local}
	KVGATE_IDENTITY=${KVGATE_IDENTITY:-files}
	NS_PREFIX=${NS_PREFIX:-kvgate-mesh}
	if [[ $SHORT == 1 ]]; then
		local d=${SHORT_DURATION:-10s}
		DURATION=$d LINKERD_DURATION=$d LLM_DURATION=$d WARMUP=2s
	fi
	OUT=${OUT:-$PWD/mesh-results-$(date -u +%Y%m%dT%H%M%SZ)}
	[[ -n ${MESH_IMAGE:-} ]] || die "set MESH_IMAGE to an image with kvgate and meshbench that your nodes can pull (benchmarks/mesh/image.sh builds one; see README.md)"
	[[ $KVGATE_IDENTITY == files || $KVGATE_IDENTITY == spire ]] || die "KVGATE_IDENTITY must be files or spire, got '$KVGATE_IDENTITY'"
	local dp w
	for dp in $DATA_PLANES; do
		case $dp in none | kvgate | ambient | waypoint | linkerd) ;; *) die "DATA_PLANES: unknown '$dp' (none kvgate ambient waypoint linkerd)" ;; esac
	done
	for w in $WORKLOADS; do
		case $w in istio | linkerd | llm) ;; *) die "WORKLOADS: unknown '$w' (istio linkerd llm)" ;; esac
	done
}

k() { timeout 600 "$KUBECTL" "$@"; }

# render FILE: the manifest with the kit's placeholders filled in; in SPIRE mode the kvgate
# node proxy reads the Workload API socket the SPIFFE CSI driver mounts instead of SVID files.
render() {
	local out
	out=$(sed -e "s|\${NS}|$NS|g" -e "s|\${MESH_IMAGE}|$MESH_IMAGE|g" -e "s|\${CLIENT_NODE}|$CLIENT_NODE|g" \
		-e "s|\${SERVER_NODE}|$SERVER_NODE|g" -e "s|\${SERVER_NODE_IP}|$SERVER_NODE_IP|g" \
		-e "s|\${TRUST_DOMAIN}|$TRUST_DOMAIN|g" "$1")
	if [[ $KVGATE_IDENTITY == spire ]]; then
		out=$(sed -e 's|identity: {files: {dir: /run/svid}}|identity: {workloadAPI: "unix:///run/svid/spire-agent.sock"}|' \
			-e 's|secret: {secretName: kvgate-svid}|csi: {driver: csi.spiffe.io, readOnly: true}|' <<<"$out")
	fi
	[[ $out != *'${'* ]] || die "$1: a placeholder was left unfilled: $(grep -o '\${[A-Z_]*}' <<<"$out" | sort -u | tr '\n' ' ')"
	printf '%s\n' "$out"
}

apply() { render "$1" | k apply -f - >&2; }

INSTALLED=() # what to remove, newest last: "helm:RELEASE", "gwapi", "linkerd", "istio-crds", "ns:NAME"

remove_installed() {
	local i item
	for ((i = ${#INSTALLED[@]} - 1; i >= 0; i--)); do
		item=${INSTALLED[i]}
		log "removing $item"
		case $item in
		helm:*) timeout 300 "$HELM" uninstall "${item#helm:}" -n istio-system --wait >&2 || log "warning: helm uninstall ${item#helm:} failed" ;;
		istio-crds)
			k get crd -o name | grep 'istio\.io' | xargs -r "$KUBECTL" delete --wait=true >&2 || true
			k delete namespace istio-system --ignore-not-found --wait=true >&2 || true
			;;
		linkerd)
			timeout 300 "$LINKERD" uninstall 2>/dev/null | k delete --ignore-not-found -f - >&2 || log "warning: linkerd uninstall failed"
			;;
		gwapi) k delete --ignore-not-found -f "https://github.com/kubernetes-sigs/gateway-api/releases/download/$GATEWAY_API_VERSION/standard-install.yaml" >&2 || true ;;
		ns:*) k delete namespace "${item#ns:}" --ignore-not-found --wait=true >&2 || log "warning: namespace ${item#ns:} not removed" ;;
		esac
	done
	INSTALLED=()
}

cluster_cleanup() {
	((${#INSTALLED[@]} == 0)) || remove_installed
	cleanup
}

# ---------------------------------------------------------------- installs

ensure_gateway_api() {
	if k get crd httproutes.gateway.networking.k8s.io >/dev/null 2>&1; then
		log "Gateway API CRDs present: $(k get crd httproutes.gateway.networking.k8s.io -o "jsonpath={.metadata.annotations.gateway\.networking\.k8s\.io/bundle-version}") (left as they are)"
		return
	fi
	log "installing the Gateway API CRDs $GATEWAY_API_VERSION (standard channel)"
	INSTALLED+=(gwapi)
	k apply -f "https://github.com/kubernetes-sigs/gateway-api/releases/download/$GATEWAY_API_VERSION/standard-install.yaml" >&2
}

install_istio_ambient() { # Istio's documented Helm install for ambient mode
	ensure_gateway_api
	local r args
	INSTALLED+=(istio-crds)
	for r in istio-base:base istiod:istiod istio-cni:cni ztunnel:ztunnel; do
		args=()
		[[ ${r#*:} == istiod || ${r#*:} == cni ]] && args=(--set profile=ambient)
		log "helm install ${r%%:*} (istio/${r#*:} $ISTIO_VERSION)"
		INSTALLED+=("helm:${r%%:*}")
		timeout 600 "$HELM" upgrade --install "${r%%:*}" "${r#*:}" --repo "$ISTIO_CHARTS" --version "$ISTIO_VERSION" \
			-n istio-system --create-namespace --wait --timeout 5m "${args[@]}" >&2 || die "helm install ${r%%:*} failed"
	done
}

install_linkerd() { # Linkerd's documented CLI install
	command -v "$LINKERD" >/dev/null || die "the linkerd CLI is not on PATH: curl --proto '=https' --tlsv1.2 -sSfL https://run.linkerd.io/install-edge | LINKERD2_VERSION=$LINKERD_VERSION sh"
	local v
	v=$("$LINKERD" version --client --short 2>/dev/null)
	[[ $v == "$LINKERD_VERSION" ]] || die "the linkerd CLI is $v, the kit pins $LINKERD_VERSION: install that CLI, or run with LINKERD_VERSION=$v to use yours"
	ensure_gateway_api
	timeout 300 "$LINKERD" check --pre >&2 || die "linkerd check --pre failed (output above)"
	INSTALLED+=(linkerd)
	log "linkerd install --crds | kubectl apply; linkerd install | kubectl apply ($LINKERD_VERSION)"
	timeout 300 "$LINKERD" install --crds | k apply -f - >&2
	timeout 300 "$LINKERD" install | k apply -f - >&2
	timeout 600 "$LINKERD" check --wait 5m >&2 || die "linkerd check failed (output above)"
}

# make_namespace DATA-PLANE: the namespace of one data plane, labelled for it.
make_namespace() {
	NS=$NS_PREFIX-$1
	log "namespace $NS"
	INSTALLED+=("ns:$NS")
	k create namespace "$NS" >&2
	k label namespace "$NS" app.kubernetes.io/part-of=kvgate-mesh-bench >&2
	case $1 in
	ambient) k label namespace "$NS" istio.io/dataplane-mode=ambient >&2 ;;
	waypoint) k label namespace "$NS" istio.io/dataplane-mode=ambient istio.io/use-waypoint=waypoint >&2 ;;
	linkerd) k annotate namespace "$NS" linkerd.io/inject=enabled >&2 ;;
	esac
}

install_kvgate_node() {
	if [[ $KVGATE_IDENTITY == files ]]; then
		local d=$WORK/svid
		"$WORK/bin/meshbench" spiffe --write-only --dir "$d" --id "node=spiffe://$TRUST_DOMAIN/ns/$NS/sa/kvgate-node" ||
			die "meshbench spiffe failed"
		k -n "$NS" create secret generic kvgate-svid --from-file="$d/node/svid.0.pem" --from-file="$d/node/svid.0.key" \
			--from-file="$d/node/bundle.0.pem" >&2
	fi
	apply "$HERE/manifests/kvgate-node.yaml"
	k -n "$NS" rollout status daemonset/kvgate-node --timeout 5m >&2 || die "the kvgate node proxies did not become ready"
}

# ---------------------------------------------------------------- measuring

# scrape_nodes FILE NODE...: the kubelets' resource metrics, concatenated.
scrape_nodes() {
	local f=$1 n
	shift
	: >"$f"
	for n in "$@"; do k get --raw "/api/v1/nodes/$n/proxy/metrics/resource" >>"$f" 2>>"$WORK/scrape.log" || true; done
}

# sample_podmetrics FILE SECONDS: metrics.k8s.io samples every 15 s (the fallback source).
sample_podmetrics() {
	local f=$1 end=$((SECONDS + $2))
	: >"$f"
	while ((SECONDS < end)); do
		k get --raw "/apis/metrics.k8s.io/v1beta1/pods" >>"$f" 2>/dev/null && echo >>"$f" || return 0
		sleep 15
	done
}

# proxy_selectors DATA-PLANE: the --proxy arguments of meshbench collect.
proxy_selectors() {
	local p
	case $1 in
	kvgate) for p in $(k -n "$NS" get pods -l app=kvgate-node -o jsonpath='{range .items[*]}{.spec.nodeName}={.metadata.name}{"\n"}{end}' | awk -F= -v a="$CLIENT_NODE" -v b="$SERVER_NODE" '$1 == a || $1 == b {print $2}'); do
		echo "--proxy $NS/$p/kvgate"
	done ;;
	ambient | waypoint)
		for p in $(k -n istio-system get pods -l app=ztunnel -o jsonpath='{range .items[*]}{.spec.nodeName}={.metadata.name}{"\n"}{end}' | awk -F= -v a="$CLIENT_NODE" -v b="$SERVER_NODE" '$1 == a || $1 == b {print $2}'); do
			echo "--proxy istio-system/$p/istio-proxy"
		done
		[[ $1 == ambient ]] || echo "--proxy $NS/waypoint-*/istio-proxy"
		;;
	linkerd) echo "--proxy $NS/*/linkerd-proxy" ;;
	esac
}

# measured_nodes: the nodes whose kubelets are scraped (client, server, and the waypoint's).
measured_nodes() {
	{
		echo "$CLIENT_NODE"
		echo "$SERVER_NODE"
		k -n "$NS" get pods -o jsonpath='{range .items[*]}{.metadata.name} {.spec.nodeName}{"\n"}{end}' 2>/dev/null | awk '$1 ~ /^waypoint-/ {print $2}' || true
	} | sort -u | grep .
}

# measure DP WORKLOAD-NAME NOTE -- LOAD-ARGS...: one run; appends its row to rows.jsonl.
measure() {
	local dp=$1 wl=$2 note=$3 dur_s warm_s
	shift 4
	dur_s=$(secs "$DUR")
	warm_s=$(secs "$WARMUP")
	local raw=$OUT/raw/$dp-$wl
	local early=$((warm_s + dur_s / 5)) late=$((warm_s + dur_s - dur_s / 10))
	((late > early)) || late=$((early + 1))
	log "$dp / $wl: $DUR (after $WARMUP warm-up): meshbench load $*"
	local nodes
	nodes=$(measured_nodes | tr '\n' ' ')
	(
		sleep "$early"
		scrape_nodes "$raw.kubelet-before.txt" $nodes
		sleep $((late - early))
		scrape_nodes "$raw.kubelet-after.txt" $nodes
	) &
	local scraper=$!
	(sample_podmetrics "$raw.podmetrics.json" $((warm_s + dur_s))) &
	local sampler=$!
	if ! timeout $((warm_s + dur_s + 120)) "$KUBECTL" -n "$NS" exec deploy/client -c client -- /usr/local/bin/meshbench load \
		--duration "${dur_s}s" --warmup "${warm_s}s" "$@" >"$raw.json"; then
		kill "$scraper" "$sampler" 2>/dev/null || true
		wait "$scraper" "$sampler" 2>/dev/null || true
		cat "$raw.json" >&2
		die "$dp / $wl: the load run failed"
	fi
	wait "$scraper" "$sampler" 2>/dev/null || true
	local sel=() base=() src=()
	read -ra sel <<<"$(proxy_selectors "$dp" | tr '\n' ' ')"
	[[ $dp == none || ! -s $OUT/raw/none-$wl.json ]] || base=(--baseline "$OUT/raw/none-$wl.json")
	if ((${#sel[@]})); then
		if grep -q container_cpu_usage_seconds_total "$raw.kubelet-after.txt" 2>/dev/null; then
			src=(--metrics-before "$raw.kubelet-before.txt" --metrics-after "$raw.kubelet-after.txt")
		elif [[ -s $raw.podmetrics.json ]]; then
			log "$dp / $wl: no kubelet resource metrics (nodes/proxy access?); using metrics.k8s.io"
			src=(--pod-metrics "$raw.podmetrics.json")
		else
			die "$dp / $wl: neither the kubelets' /metrics/resource nor metrics.k8s.io answered: see README.md (RBAC for nodes/proxy, or install metrics-server)"
		fi
	fi
	"$WORK/bin/meshbench" collect --setup cluster --data-plane "$(dp_name "$dp")" --workload "$wl" --load "$raw.json" \
		--note "$note" "${base[@]}" "${src[@]}" "${sel[@]}" >>"$OUT/rows.jsonl" || die "$dp / $wl: collect failed"
	tail -n 1 "$OUT/rows.jsonl" >&2
}

dp_name() {
	case $1 in
	none) echo "no mesh" ;;
	kvgate) echo "kvgate node proxy" ;;
	ambient) echo "Istio ztunnel" ;;
	waypoint) echo "Istio ztunnel + waypoint" ;;
	linkerd) echo "Linkerd" ;;
	esac
}

run_workloads() {
	local dp=$1 base llm note="" r
	base=http://server.$NS.svc.cluster.local:8080/1k
	llm=http://sim.$NS.svc.cluster.local:8000/v1/chat/completions
	if [[ $dp == kvgate ]]; then
		# kvgate is addressed, not interposed: the client sends to its node's kvgate.
		local hostip
		hostip=$(k -n "$NS" get pods -l app=client -o jsonpath='{.items[0].status.hostIP}')
		base=http://$hostip:15001/1k
		llm=http://$hostip:15001/v1/chat/completions
	fi
	for w in $WORKLOADS; do
		case $w in
		istio) DUR=$DURATION measure "$dp" istio-1k "" -- --url "$base" --rate 1000 --conns 16 ;;
		linkerd) for r in $LINKERD_RATES; do DUR=$LINKERD_DURATION measure "$dp" "linkerd-$r" "" -- --url "$base" --rate "$r" --conns "$LINKERD_CONNS"; done ;;
		llm)
			case $dp in
			none) note="no split, no policy" ;;
			ambient) note="L4 policy; no split" ;;
			*) note="" ;;
			esac
			DUR=$LLM_DURATION measure "$dp" llm "$note" -- --chat --url "$llm" --rate "$LLM_RATE" --conns "$LLM_CONNS" --max-tokens "$LLM_MAX_TOKENS"
			;;
		esac
	done
}

# ---------------------------------------------------------------- main

pick_nodes() {
	local nodes
	mapfile -t nodes < <(k get nodes -o jsonpath='{range .items[?(@.spec.unschedulable!=true)]}{.metadata.name}{" "}{.spec.taints[*].effect}{"\n"}{end}' | awk '$0 !~ /NoSchedule|NoExecute/ {print $1}')
	((${#nodes[@]})) || die "no schedulable node without NoSchedule taints: set CLIENT_NODE and SERVER_NODE"
	CLIENT_NODE=${CLIENT_NODE:-${nodes[0]}}
	SERVER_NODE=${SERVER_NODE:-${nodes[1]:-${nodes[0]}}}
	[[ $CLIENT_NODE != "$SERVER_NODE" ]] || log "warning: client and server share node $CLIENT_NODE (one schedulable node): the mTLS hop stays on one machine"
	SERVER_NODE_IP=$(k get node "$SERVER_NODE" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')
	[[ -n $SERVER_NODE_IP ]] || die "node $SERVER_NODE has no InternalIP"
	log "client node $CLIENT_NODE, server node $SERVER_NODE ($SERVER_NODE_IP)"
}

run_cluster() {
	cluster_env
	trap cluster_cleanup EXIT
	command -v "$KUBECTL" >/dev/null || die "kubectl is not on PATH"
	k version >"$WORK/kubectl-version.txt" 2>&1 || { cat "$WORK/kubectl-version.txt" >&2; die "kubectl cannot reach the cluster (KUBECONFIG / current context)"; }
	k auth can-i get nodes/proxy >/dev/null 2>&1 || log "warning: no get on nodes/proxy: CPU comes from metrics.k8s.io (coarser) if metrics-server runs"
	local dp ns
	for dp in $DATA_PLANES; do
		ns=$NS_PREFIX-$dp
		! k get namespace "$ns" >/dev/null 2>&1 || die "namespace $ns exists (a previous run?): delete it, or set NS_PREFIX"
		[[ $dp != ambient && $dp != waypoint ]] || ! k get namespace istio-system >/dev/null 2>&1 ||
			die "Istio is installed already (namespace istio-system): the kit installs and removes its own; use a cluster without it"
		[[ $dp != linkerd ]] || ! k get namespace linkerd >/dev/null 2>&1 ||
			die "Linkerd is installed already (namespace linkerd): the kit installs and removes its own; use a cluster without it"
		[[ $dp != ambient && $dp != waypoint ]] || command -v "$HELM" >/dev/null || die "helm is not on PATH (needed for Istio)"
	done
	mkdir -p "$WORK/bin" "$OUT/raw"
	build_meshbench
	pick_nodes
	{
		echo "started $(date -u +%Y-%m-%dT%H:%M:%SZ)"
		cat "$WORK/kubectl-version.txt"
		k get nodes -o wide
		echo "MESH_IMAGE=$MESH_IMAGE ISTIO_VERSION=$ISTIO_VERSION LINKERD_VERSION=$LINKERD_VERSION GATEWAY_API_VERSION=$GATEWAY_API_VERSION"
		echo "DATA_PLANES=\"$DATA_PLANES\" WORKLOADS=\"$WORKLOADS\" DURATION=$DURATION LINKERD_DURATION=$LINKERD_DURATION LLM_DURATION=$LLM_DURATION WARMUP=$WARMUP SHORT=$SHORT"
		echo "client node $CLIENT_NODE, server node $SERVER_NODE"
	} >"$OUT/environment.txt" 2>&1
	: >"$OUT/rows.jsonl"
	for dp in $DATA_PLANES; do
		log "=== data plane: $(dp_name "$dp")"
		case $dp in
		ambient | waypoint) install_istio_ambient ;;
		linkerd) install_linkerd ;;
		esac
		make_namespace "$dp"
		[[ $dp != kvgate ]] || install_kvgate_node
		if [[ $dp == waypoint ]]; then
			apply "$HERE/manifests/gateway-api/waypoint.yaml"
			k -n "$NS" wait --for=condition=Programmed gateway/waypoint --timeout 5m >&2 || die "the waypoint was not programmed"
		fi
		apply "$HERE/manifests/workloads.yaml"
		k -n "$NS" rollout status deploy/client deploy/server deploy/sim-v1 deploy/sim-v2 --timeout 5m >&2 || die "the workloads did not become ready in $NS"
		case $dp in
		ambient) apply "$HERE/manifests/third-party/istio-authz-l4.yaml" ;;
		waypoint) apply "$HERE/manifests/gateway-api/canary-route.yaml"; apply "$HERE/manifests/third-party/istio-authz-l7.yaml" ;;
		linkerd) apply "$HERE/manifests/gateway-api/canary-route.yaml"; apply "$HERE/manifests/third-party/linkerd-authz.yaml" ;;
		esac
		sleep 5 # let the proxies receive the policy and route
		[[ $dp != linkerd ]] || k -n "$NS" get pods -o jsonpath='{range .items[*]}{.metadata.name}: {.spec.containers[*].name} {.spec.initContainers[*].name}{"\n"}{end}' >&2
		run_workloads "$dp"
		remove_installed
	done
	local dps="" wls="" w r
	for dp in $DATA_PLANES; do dps+="${dps:+,}$(dp_name "$dp")"; done
	for w in $WORKLOADS; do
		case $w in
		istio) wls+="${wls:+,}istio-1k" ;;
		linkerd) for r in $LINKERD_RATES; do wls+="${wls:+,}linkerd-$r"; done ;;
		llm) wls+="${wls:+,}llm" ;;
		esac
	done
	"$WORK/bin/meshbench" report --rows "$OUT/rows.jsonl" --out "$WORK/table.md" --png "$OUT/results.png" \
		--title "kvgate mesh benchmark: $(k config current-context 2>/dev/null || echo cluster)" \
		--check --expect-data-planes "$dps" --expect-workloads "$wls" || {
		[[ $SHORT == 0 ]] || die "the table has gaps (listed above)"
		log "warning: the table has gaps (listed above)"
	}
	{
		echo "# Mesh benchmark on a cluster"
		echo
		echo "Measured by \`benchmarks/mesh/run.sh --cluster$([[ $SHORT == 0 ]] || echo " --short")\`; method in benchmarks/mesh/README.md; environment in environment.txt."
		echo
		cat "$WORK/table.md"
		echo
		echo "![chart](results.png)"
	} >"$OUT/results.md"
	cat "$OUT/results.md"
	log "wrote $OUT (results.md, results.png, rows.jsonl, raw/, environment.txt)"
}
