#!/usr/bin/env bash
# Checks the kvgate Helm chart without a cluster:
#   - helm lint, with the default values and with every optional part on;
#   - helm template with several value sets, checking what each must render
#     (grace period from drainTimeout, update strategy, capabilities, RBAC,
#     GatewayClass, ServiceMonitor, SPIFFE volumes);
#   - the kvgate config each value set renders passes `kvgate validate`;
#   - values that must be refused are refused (schema and template checks).
#
#   deploy/helm/test.sh        # needs helm and go on PATH
#
# The server-side dry run of the rendered manifests against a real
# kube-apiserver is kube.TestManifestsServerDryRun (go test ./kube/).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
chart=deploy/helm/kvgate
KUBE_VERSION="${KUBE_VERSION:-1.30.0}"
for c in helm go; do
  command -v "$c" >/dev/null || { echo "test.sh: $c is not on PATH" >&2; exit 2; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

echo "== building kvgate (for kvgate validate)"
go build -o "$work/kvgate" ./cmd/kvgate

# render NAME [helm args...]: helm template into $work/NAME.yaml.
render() {
  local name="$1"; shift
  helm template kvgate "$chart" --namespace kvgate --kube-version "$KUBE_VERSION" "$@" >"$work/$name.yaml"
}
# config NAME: the kvgate.yaml of the rendered ConfigMap, unindented.
config() {
  awk '
    /^kind: ConfigMap/ { cm = 1 }
    /^---/ { cm = 0; inblock = 0 }
    cm && /^  kvgate.yaml: \|/ { inblock = 1; next }
    inblock && /^    / { sub(/^    /, ""); print; next }
    inblock { inblock = 0 }
  ' "$work/$1.yaml" >"$work/$1.kvgate.yaml"
  if [ ! -s "$work/$1.kvgate.yaml" ]; then fail "$1: no kvgate.yaml in the ConfigMap"; return; fi
  if ! "$work/kvgate" validate --config "$work/$1.kvgate.yaml" >"$work/$1.validate" 2>&1; then
    fail "$1: the rendered config does not pass kvgate validate:"; sed 's/^/    /' "$work/$1.validate" >&2
  fi
}
# has NAME REGEX / hasnt NAME REGEX: the rendered manifests match (or not) an extended regex.
has() { grep -Eq -- "$2" "$work/$1.yaml" || fail "$1: expected to find /$2/"; }
hasnt() { ! grep -Eq -- "$2" "$work/$1.yaml" || fail "$1: expected no /$2/"; }
# args NAME: the kvgate container's args in the rendered DaemonSet, one a
# line (comments dropped).
args() {
  awk '
    /^kind: DaemonSet/ { ds = 1 }
    /^---/ { ds = 0; a = 0 }
    ds && /^          args:$/ { a = 1; next }
    a && /^            - / { sub(/^            - /, ""); gsub(/"/, ""); print; next }
    a && /^            #/ { next }
    a { a = 0 }
  ' "$work/$1.yaml"
}
# grants NAME KIND OBJECT-NAME GROUP RESOURCE VERB: a rule of the rendered
# Role or ClusterRole KIND/OBJECT-NAME grants VERB on GROUP RESOURCE ("" is
# the core group; the chart writes rules in flow style, one list a line).
grants() {
  awk -v kind="$2" -v name="$3" -v group="$4" -v res="$5" -v verb="$6" '
    function items(line,   s, n, i, parts) {
      s = line; sub(/^[^[]*\[/, "", s); sub(/\].*$/, "", s)
      n = split(s, parts, /, */); delete set
      for (i = 1; i <= n; i++) { gsub(/["\047 ]/, "", parts[i]); set[parts[i]] = 1 }
    }
    function check() { if (g && r && v) found = 1; g = r = v = 0 }
    /^---/ { if (in_obj) check(); in_obj = 0; k = ""; next }
    /^kind: / { k = $2 }
    /^  name: / && k == kind && $2 == name { in_obj = 1 }
    !in_obj { next }
    /^  - apiGroups: / { check(); items($0); g = (group in set) }
    /^    resources: / { items($0); r = (res in set) }
    /^    verbs: / { items($0); v = (verb in set) }
    END { if (in_obj) check(); exit !found }
  ' "$work/$1.yaml"
}
# refused DESCRIPTION MESSAGE-REGEX [helm args...]: helm template must fail with that message.
refused() {
  local what="$1" msg="$2"; shift 2
  if helm template kvgate "$chart" --kube-version "$KUBE_VERSION" "$@" >"$work/refused.out" 2>&1; then
    fail "refused: $what was accepted"
  elif ! grep -Eq -- "$msg" "$work/refused.out"; then
    fail "refused: $what failed without /$msg/:"; sed 's/^/    /' "$work/refused.out" >&2
  fi
}

# notes NAME [helm args...]: NOTES.txt rendered (helm template skips it, and
# helm install --dry-run needs a cluster) as one JSON string, into
# $work/NAME.notes; a copy of the chart renders it through tpl.
notes() {
  local name="$1"; shift
  rm -rf "$work/notes-chart"
  cp -r "$chart" "$work/notes-chart"
  cp "$chart/templates/NOTES.txt" "$work/notes-chart/notes.txt"
  echo 'notes: {{ tpl (.Files.Get "notes.txt") . | toJson }}' >"$work/notes-chart/templates/zz-notes.yaml"
  if ! helm template kvgate "$work/notes-chart" --namespace kvgate --kube-version "$KUBE_VERSION" "$@" \
      --show-only templates/zz-notes.yaml >"$work/$name.notes" 2>&1; then
    fail "$name: NOTES.txt does not render:"; sed 's/^/    /' "$work/$name.notes" >&2
  fi
}

all_on=(--set kubernetes.enabled=true --set serviceMonitor.enabled=true --set spiffe.enabled=true)

echo "== helm lint"
helm lint --strict --kube-version "$KUBE_VERSION" "$chart" >"$work/lint.out" 2>&1 || { cat "$work/lint.out"; fail "helm lint"; }
helm lint --strict --kube-version "$KUBE_VERSION" "$chart" "${all_on[@]}" >"$work/lint2.out" 2>&1 || { cat "$work/lint2.out"; fail "helm lint (all on)"; }

echo "== helm template: default values"
render default
config default
has default 'kind: DaemonSet'
has default 'terminationGracePeriodSeconds: 45$'
has default 'maxSurge: 1$'
has default 'maxUnavailable: 0$'
has default 'internalTrafficPolicy: Local'
has default 'readOnlyRootFilesystem: true'
has default 'type: RuntimeDefault'
has default 'path: /readyz'
has default 'automountServiceAccountToken: false'
has default 'address: 0.0.0.0:9901'
hasnt default 'NET_BIND_SERVICE|ip_unprivileged_port_start'
hasnt default 'kind: (ClusterRole|ClusterRoleBinding|Role|GatewayClass|ServiceMonitor)$'
hasnt default 'hostNetwork|hostPort|csi.spiffe.io'
want_args=$'run\n--config\n/etc/kvgate/kvgate.yaml'
[ "$(args default)" = "$want_args" ] || fail "default: args are $(args default | tr '\n' ' '), want $(echo "$want_args" | tr '\n' ' ')"
hasnt default 'name: POD_NAMESPACE|name: POD_IP'

echo "== helm template: GOMEMLIMIT from goMemLimit and the memory limit"
# gomem NAME: the GOMEMLIMIT entry of the kvgate container ("" if none).
gomem() { grep -A4 -- '- name: GOMEMLIMIT$' "$work/$1.yaml" | grep -Eo 'value: .*|resource: limits.memory' | head -1; }
[ "$(gomem default)" = 'value: "943718KiB"' ] || fail "default: GOMEMLIMIT is '$(gomem default)', want 90% of 1Gi, value: \"943718KiB\""
render gomem-mi --set resources.limits.memory=512Mi
[ "$(gomem gomem-mi)" = 'value: "471859KiB"' ] || fail "512Mi: GOMEMLIMIT is '$(gomem gomem-mi)'"
render gomem-set --set goMemLimit=700MiB
[ "$(gomem gomem-set)" = 'value: "700MiB"' ] || fail "goMemLimit=700MiB: GOMEMLIMIT is '$(gomem gomem-set)'"
render gomem-decimal --set resources.limits.memory=1G
[ "$(gomem gomem-decimal)" = 'resource: limits.memory' ] || fail "limit 1G: GOMEMLIMIT is '$(gomem gomem-decimal)', want the limit itself"
render gomem-off --set goMemLimit=off
hasnt gomem-off 'name: GOMEMLIMIT'
render gomem-nolimit --set resources.limits=null
hasnt gomem-nolimit 'name: GOMEMLIMIT'
if helm template kvgate "$chart" --kube-version "$KUBE_VERSION" --set goMemLimit=lots >/dev/null 2>&1; then
  fail "goMemLimit=lots was accepted"
fi

echo "== helm template: kubernetes.enabled, serviceMonitor and spiffe (csi) on"
render allon "${all_on[@]}"
config allon
has allon 'kind: ClusterRole$'
has allon 'kind: ClusterRoleBinding$'
has allon 'kind: Role$'
has allon 'resources: \[leases\]'
has allon 'resources: \[secrets\]'
has allon 'verbs: \[get\]$'
has allon 'inferencepools/status'
has allon 'kind: GatewayClass$'
has allon 'controllerName: kvgate.dev/gateway'
has allon 'kind: ServiceMonitor$'
has allon 'apiVersion: monitoring.coreos.com/v1'
has allon 'driver: csi.spiffe.io'
has allon 'value: unix:///run/spire/sockets/spire-agent.sock'
has allon 'workloadAPI: unix:///run/spire/sockets/spire-agent.sock'
has allon 'automountServiceAccountToken: true'
# Least privilege: nothing that creates or deletes cluster objects, and no
# list or watch of Secrets.
hasnt allon 'verbs: \[.*(delete|deletecollection|\*).*\]'
hasnt allon "resources: \[.*'?\*'?.*\]"
if awk '/resources: \[secrets\]/{s=1;next} s&&/verbs/{print;s=0}' "$work/allon.yaml" | grep -Eq 'list|watch'; then
  fail "allon: secrets must be get only"
fi

echo "== helm template: kubernetes.enabled: run --kubernetes, its env and the RBAC kube/ needs"
render kube --set kubernetes.enabled=true --set kubernetes.controllerName=example.com/kvgate-test
config kube
want_args=$'run\n--kubernetes\n--controller-name\nexample.com/kvgate-test\n--leader-elect=true\n--config\n/etc/kvgate/kvgate.yaml'
[ "$(args kube)" = "$want_args" ] || fail "kube: args are $(args kube | tr '\n' ' '), want $(echo "$want_args" | tr '\n' ' ')"
has kube 'controllerName: example.com/kvgate-test$'
has kube 'automountServiceAccountToken: true'
for v in POD_NAMESPACE:metadata.namespace POD_IP:status.podIP; do
  if ! grep -A3 -- "- name: ${v%%:*}\$" "$work/kube.yaml" | grep -q "fieldPath: ${v#*:}\$"; then
    fail "kube: env ${v%%:*} is not from fieldRef ${v#*:}"
  fi
  [ "$(grep -c -- "- name: ${v%%:*}\$" "$work/kube.yaml")" = 1 ] || fail "kube: env ${v%%:*} is not set exactly once"
done
# What kube/ calls: list and watch of every watched resource (watch.go),
# get of Secrets by name (secrets.go), get and status update of what status
# is written on (status.go), and the Lease of leader election (leader.go).
need() { # KIND OBJECT-NAME GROUP VERBS RESOURCES...
  local kind="$1" obj="$2" group="$3" verbs="$4" r v; shift 4
  for r in "$@"; do
    for v in $verbs; do
      grants kube "$kind" "$obj" "$group" "$r" "$v" || fail "kube: $kind $obj grants no $v on ${r}${group:+.$group}"
    done
  done
}
need ClusterRole kvgate gateway.networking.k8s.io "list watch" gatewayclasses gateways httproutes referencegrants
need ClusterRole kvgate inference.networking.k8s.io "list watch" inferencepools
need ClusterRole kvgate inference.networking.x-k8s.io "list watch" inferencepools inferenceobjectives inferencemodels
need ClusterRole kvgate security.istio.io "list watch" authorizationpolicies
need ClusterRole kvgate "" "list watch" services pods
need ClusterRole kvgate discovery.k8s.io "list watch" endpointslices
need ClusterRole kvgate "" get secrets
need ClusterRole kvgate gateway.networking.k8s.io get gatewayclasses gateways httproutes
need ClusterRole kvgate inference.networking.k8s.io get inferencepools
need ClusterRole kvgate gateway.networking.k8s.io update gatewayclasses/status gateways/status httproutes/status
need ClusterRole kvgate inference.networking.k8s.io update inferencepools/status
need Role kvgate-leader-election coordination.k8s.io "get create update" leases
# The checker itself: a grant the chart does not make is reported missing.
grants kube ClusterRole kvgate "" list secrets && fail "test.sh: grants found list on secrets"
grants kube ClusterRole kvgate gateway.networking.k8s.io update referencegrants/status && fail "test.sh: grants found update on referencegrants/status"
grants kube Role kvgate-leader-election coordination.k8s.io delete leases && fail "test.sh: grants found delete on leases"

echo "== helm template: Secrets per namespace, SPIFFE from a hostPath"
render scoped --set kubernetes.enabled=true --set 'kubernetes.secretNamespaces={gw-a,gw-b}' \
  --set spiffe.enabled=true --set spiffe.source=hostPath
config scoped
has scoped 'namespace: gw-a'
has scoped 'namespace: gw-b'
has scoped 'path: /run/spire/agent-sockets'
hasnt scoped 'csi.spiffe.io'
if [ "$(awk '/^kind: ClusterRole$/{c=1} /^---/{c=0} c' "$work/scoped.yaml" | grep -c secrets || true)" != 0 ]; then
  fail "scoped: the ClusterRole must not grant Secrets when secretNamespaces is set"
fi

echo "== helm template: port 443 with http3, drainTimeout 2m, preStop sleep"
render lowport --set drainTimeout=2m --set preStopSleepSeconds=5 -f - <<'YAML'
config:
  listeners:
    - name: public
      address: 0.0.0.0:443
      protocols: [http1, http2, http3]
      tls: {certFile: /etc/kvgate/tls/tls.crt, keyFile: /etc/kvgate/tls/tls.key}
    - name: Mesh_Listener_With_A_Long_Name
      address: ":15008"
  routes:
    - {name: all, backends: [{pool: p}]}
  pools:
    - {name: p, endpoints: ["10.0.0.1:8000"]}
YAML
config lowport
has lowport 'terminationGracePeriodSeconds: 140$'
has lowport 'NET_BIND_SERVICE'
has lowport 'name: net.ipv4.ip_unprivileged_port_start'
has lowport 'value: "443"'
has lowport 'name: public-h3'
has lowport 'protocol: UDP'
has lowport 'name: listener-1'
has lowport 'seconds: 5'
has lowport 'drainTimeout: 2m'

echo "== helm template: hostNetwork (no surge: host ports cannot be shared)"
render hostnet --set hostNetwork=true
config hostnet
has hostnet 'hostNetwork: true'
has hostnet 'dnsPolicy: ClusterFirstWithHostNet'
has hostnet 'maxSurge: 0$'
has hostnet 'maxUnavailable: 1$'
render hostport --set hostPort.enabled=true
has hostport 'hostPort: 8080'
has hostport 'maxSurge: 0$'

echo "== helm template: configChange"
# With reload, a route change keeps the checksum (kvgate reloads it in place)
# and a listener change rolls the pods; with restart both roll.
sum() { grep -Eo 'config-checksum: [0-9a-f]+' "$work/$1.yaml"; }
# Values files that change one part of the default config.
sed 's/name: default$/name: renamed/' "$chart/values.yaml" >"$work/route2.values.yaml"
sed 's/address: 0.0.0.0:8080$/address: 0.0.0.0:8081/' "$chart/values.yaml" >"$work/listen2.values.yaml"
cmp -s "$chart/values.yaml" "$work/route2.values.yaml" && fail "test.sh: the route rename matched nothing in values.yaml"
cmp -s "$chart/values.yaml" "$work/listen2.values.yaml" && fail "test.sh: the port change matched nothing in values.yaml"
render route2 -f "$work/route2.values.yaml"
render listen2 -f "$work/listen2.values.yaml"
render restart --set configChange=restart
render restart2 --set configChange=restart -f "$work/route2.values.yaml"
[ "$(sum default)" = "$(sum route2)" ] || fail "configChange=reload: a route change rolled the pods"
[ "$(sum default)" != "$(sum listen2)" ] || fail "configChange=reload: a listener change did not roll the pods"
[ "$(sum restart)" != "$(sum restart2)" ] || fail "configChange=restart: a route change did not roll the pods"

echo "== NOTES.txt"
notes default
grep -q 'http://kvgate.kvgate.svc:8080' "$work/default.notes" || fail "NOTES.txt (default): no Service URL"
notes allon "${all_on[@]}" --set hostNetwork=true --set configChange=restart
grep -q 'kvgate run --kubernetes' "$work/allon.notes" || fail "NOTES.txt (kubernetes.enabled): no word of the Kubernetes mode"
grep -q 'kvgate-status' "$work/allon.notes" || fail "NOTES.txt (kubernetes.enabled): no word of the status Lease"
grep -q 'NODE_IP:8080' "$work/allon.notes" || fail "NOTES.txt (hostNetwork): no node address"

echo "== refused values"
refused "config.admin" 'admin.address' --set config.admin.address=0.0.0.0:1
refused "config.drainTimeout" 'drainTimeout' --set config.drainTimeout=10s
refused "a malformed drainTimeout" 'drainTimeout' --set drainTimeout=soon
refused "a grace period below the drain" 'terminationGracePeriodSeconds' --set terminationGracePeriodSeconds=20
refused "an unknown top-level key" 'additional properties|not allowed' --set imagee.tag=x
sed 's/address: 0.0.0.0:8080$/address: localhost/' "$chart/values.yaml" >"$work/noport.values.yaml"
refused "a listener without a port" 'address' -f "$work/noport.values.yaml"
refused "an unknown spiffe source" 'source' --set spiffe.source=file
refused "a controllerName without a domain" 'controllerName' --set kubernetes.enabled=true --set kubernetes.controllerName=kvgate

if [ "$fails" != 0 ]; then
  echo "== helm chart: $fails check(s) failed"
  exit 1
fi
echo "== helm chart: every check passed"
