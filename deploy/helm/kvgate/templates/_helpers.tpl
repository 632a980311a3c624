{{/*
Names, labels and the values the templates compute from other values.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "kvgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The resource name prefix: fullnameOverride, or the release name with the chart name unless it already holds it. */}}
{{- define "kvgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* chart-version, as the helm.sh/chart label wants it. */}}
{{- define "kvgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "kvgate.labels" -}}
helm.sh/chart: {{ include "kvgate.chart" . }}
{{ include "kvgate.selectorLabels" . }}
app.kubernetes.io/version: {{ include "kvgate.imageTag" . | quote }}
app.kubernetes.io/component: node-proxy
app.kubernetes.io/part-of: kvgate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the pods; never change them on upgrade. */}}
{{- define "kvgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kvgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the pods use. */}}
{{- define "kvgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kvgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kvgate.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "kvgate.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "kvgate.imageTag" .) }}
{{- end }}

{{/* Where the SPIRE agent socket directory is mounted in the container. */}}
{{- define "kvgate.spiffeDir" -}}/run/spire/sockets{{- end }}

{{- define "kvgate.spiffeSocket" -}}
{{- printf "unix://%s/%s" (include "kvgate.spiffeDir" .) .Values.spiffe.socketName }}
{{- end }}

{{/*
The kvgate configuration file: `config` from values, plus admin and
drainTimeout from their own values and identity from `spiffe`. Fails when
`config` sets a key the chart owns.
*/}}
{{- define "kvgate.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- if hasKey $cfg "admin" }}
{{- fail "config.admin: set the admin address with the top-level value admin.address (the probes use its port)" }}
{{- end }}
{{- if hasKey $cfg "drainTimeout" }}
{{- fail "config.drainTimeout: set the top-level value drainTimeout instead (the termination grace period is computed from it)" }}
{{- end }}
{{- if and .Values.spiffe.enabled (not (hasKey $cfg "identity")) }}
{{- $_ := set $cfg "identity" (dict "workloadAPI" (include "kvgate.spiffeSocket" .)) }}
{{- end }}
{{- $_ := set $cfg "admin" (dict "address" .Values.admin.address) }}
{{- $_ := set $cfg "drainTimeout" .Values.drainTimeout }}
{{- toYaml $cfg }}
{{- end }}

{{/*
The pod annotation that rolls the pods when the configuration changes in a
way kvgate cannot reload in place (see configChange in values.yaml). Keys
kvgate reloads live are left out of the checksum with configChange=reload.
*/}}
{{- define "kvgate.configChecksum" -}}
{{- $cfg := include "kvgate.config" . | fromYaml }}
{{- if eq .Values.configChange "reload" }}
{{- $cfg = omit $cfg "routes" "pools" "authorization" }}
{{- end }}
{{- toYaml $cfg | sha256sum }}
{{- end }}

{{/* The port number at the end of a host:port address ("0.0.0.0:8080", ":8080", "[::]:8080"). */}}
{{- define "kvgate.addressPort" -}}
{{- $port := regexFind "[0-9]+$" . }}
{{- if or (not $port) (not (regexMatch ":[0-9]+$" .)) }}
{{- fail (printf "address %q: write it as host:port (for example 0.0.0.0:8080)" .) }}
{{- end }}
{{- $port }}
{{- end }}

{{/*
One entry per port kvgate listens on, as a JSON list of
{name, port, protocol}: each listener's TCP port (named after the listener
when the name is a valid port name, "listener-N" otherwise), a UDP port for
listeners that serve http3, and the admin port (name "admin").
*/}}
{{- define "kvgate.ports" -}}
{{- $ports := list }}
{{- range $i, $l := .Values.config.listeners }}
{{- $port := include "kvgate.addressPort" $l.address | int }}
{{- $base := printf "listener-%d" $i }}
{{- if and (regexMatch "^[a-z]([a-z0-9]|-[a-z0-9]){0,11}$" $l.name) (ne $l.name "admin") }}
{{- $base = $l.name }}
{{- end }}
{{- $ports = append $ports (dict "name" $base "port" $port "protocol" "TCP") }}
{{- if has "http3" ($l.protocols | default (list)) }}
{{- $ports = append $ports (dict "name" (printf "%s-h3" $base) "port" $port "protocol" "UDP") }}
{{- end }}
{{- end }}
{{- $ports | toJson }}
{{- end }}

{{- define "kvgate.adminPort" -}}
{{- include "kvgate.addressPort" .Values.admin.address }}
{{- end }}

{{/* The lowest port kvgate binds (listeners and admin). */}}
{{- define "kvgate.lowestPort" -}}
{{- $low := include "kvgate.adminPort" . | int }}
{{- range (include "kvgate.ports" . | fromJsonArray) }}
{{- if lt (int .port) $low }}{{ $low = int .port }}{{ end }}
{{- end }}
{{- $low }}
{{- end }}

{{/* drainTimeout in whole seconds (rounded up), from Go duration forms h/m/s/ms. */}}
{{- define "kvgate.drainSeconds" -}}
{{- $d := toString .Values.drainTimeout }}
{{- if not (regexMatch "^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$" $d) }}
{{- fail (printf "drainTimeout %q: write it like 30s, 2m or 1m30s" $d) }}
{{- end }}
{{- $h := regexFind "[0-9]+h" $d | trimSuffix "h" | default "0" | int }}
{{- $m := regexFind "[0-9]+m([0-9]|$)" $d | regexFind "[0-9]+" | default "0" | int }}
{{- $s := regexFind "[0-9]+s" (regexReplaceAll "[0-9]+ms" $d "") | trimSuffix "s" | default "0" | int }}
{{- $ms := regexFind "[0-9]+ms" $d | trimSuffix "ms" | default "0" | int }}
{{- add (mul $h 3600) (mul $m 60) $s (div (add $ms 999) 1000) }}
{{- end }}

{{/* terminationGracePeriodSeconds: the value, or drain + preStop sleep + margin. */}}
{{- define "kvgate.gracePeriod" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add (include "kvgate.drainSeconds" . | int) .Values.preStopSleepSeconds .Values.terminationGraceMarginSeconds }}
{{- else }}
{{- $min := add (include "kvgate.drainSeconds" . | int) .Values.preStopSleepSeconds }}
{{- if le (int .Values.terminationGracePeriodSeconds) $min }}
{{- fail (printf "terminationGracePeriodSeconds %v: must be above drainTimeout + preStopSleepSeconds (%d s), or the kubelet kills kvgate mid-drain" .Values.terminationGracePeriodSeconds $min) }}
{{- end }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* True (non-empty) when the pods take host ports, so two cannot share a node. */}}
{{- define "kvgate.usesHostPorts" -}}
{{- if or .Values.hostNetwork .Values.hostPort.enabled }}true{{ end }}
{{- end }}

{{/*
GOMEMLIMIT for the container: goMemLimit when set ("off": none), else 90% of
resources.limits.memory when it is written in Ki, Mi, Gi or Ti (the Go
runtime then collects harder before the kernel's limit, leaving a tenth for
what is not heap: stacks, buffers, the runtime itself), else "" (the template
falls back to the limit itself, or no GOMEMLIMIT without a limit).
*/}}
{{- define "kvgate.goMemLimit" -}}
{{- $limit := "" -}}
{{- with .Values.resources.limits }}{{ $limit = .memory | default "" | toString }}{{ end -}}
{{- if .Values.goMemLimit -}}
{{- .Values.goMemLimit -}}
{{- else if regexMatch "^[0-9]+(Ki|Mi|Gi|Ti)$" $limit -}}
{{- $digits := regexFind "^[0-9]+" $limit -}}
{{- $unit := trimPrefix $digits $limit -}}
{{- $kib := atoi $digits -}}
{{- if eq $unit "Mi" }}{{ $kib = mul $kib 1024 }}{{ else if eq $unit "Gi" }}{{ $kib = mul $kib 1048576 }}{{ else if eq $unit "Ti" }}{{ $kib = mul $kib 1073741824 }}{{ end -}}
{{- printf "%dKiB" (div (mul $kib 9) 10) -}}
{{- end -}}
{{- end }}
