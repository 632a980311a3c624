#!/usr/bin/env bash
# Smoke test of the kvgate image with podman, on loopback only:
#   1. a vLLM simulator (`kvgate sim`, from the same image) on 127.0.0.1;
#   2. kvgate from the image, as Kubernetes runs it (non-root, read-only root
#      file system, no capabilities, no-new-privileges), with a config
#      mounted at /etc/kvgate, host network, loopback ports;
#   3. /readyz answers 200 and a chat completion goes through kvgate;
#   4. a token stream is started, then `podman stop -t 40` sends SIGTERM:
#      /readyz turns 503 while the stream finishes, the stream ends with
#      `data: [DONE]`, and the container exits 0 within the drain bound.
#
#   deploy/image/build.sh && deploy/image/smoke.sh
#
# Environment: IMAGE (default localhost/kvgate:dev), RUNTIME (default runc;
# crun fails on some hosts), STORAGE_DRIVER (see lib.sh), KEEP=1 keeps the
# work directory and prints the containers' logs even on success.
# Every wait is bounded; containers and files are removed on exit.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
need podman curl timeout

IMAGE="${IMAGE:-localhost/kvgate:dev}"
RUNTIME="${RUNTIME:-runc}"
DRAIN_TIMEOUT=30    # drainTimeout in the config below, seconds
STOP_TIMEOUT=40     # podman stop -t: SIGKILL after this; above the drain
sf="$(storage_flags)"
# podman's global flags: no systemd here to manage cgroups or take events.
pm=(podman "$sf" --runtime "$RUNTIME" --cgroup-manager=cgroupfs --events-backend=file)
# podman raises a container's open-file limit to 1048576 by default, which
# fails (EPERM) where this shell lacks CAP_SYS_RESOURCE, as in CI sandboxes:
# keep the limits this shell already has (nproc capped at podman's own 32768).
nofile="$(ulimit -Hn)"; nproc="$(ulimit -Hu)"
[ "$nofile" = unlimited ] || [ "$nofile" -gt 1048576 ] && nofile=1048576
[ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
run_flags=(--network=host --read-only --cap-drop=all --security-opt=no-new-privileges
  --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")

work="$(mktemp -d)"
name="kvgate-smoke-$$"
sim="kvgate-smoke-sim-$$"
stream_pid=""
ok=0
cleanup() {
  if [ -n "$stream_pid" ]; then kill "$stream_pid" 2>/dev/null || true; fi
  if [ "$ok" != 1 ] || [ "${KEEP:-0}" = 1 ]; then
    for c in "$name" "$sim"; do
      timeout 20 "${pm[@]}" container exists "$c" 2>/dev/null || continue
      echo "--- logs of $c" >&2
      timeout 20 "${pm[@]}" logs --tail 30 "$c" >&2 2>&1 || true
    done
  fi
  timeout 60 "${pm[@]}" rm --force --ignore --time 0 "$name" "$sim" >/dev/null 2>&1 || true
  if [ "${KEEP:-0}" = 1 ]; then echo "work directory: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

die() { echo "smoke.sh: FAIL: $*" >&2; exit 1; }

# free_port: a loopback TCP port nothing listens on (other jobs share this host).
free_port() {
  local p _
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  die "no free loopback port found"
}
# wait_http URL CODE SECONDS: until URL answers CODE.
wait_http() {
  local deadline=$((SECONDS + $3)) code
  while [ "$SECONDS" -lt "$deadline" ]; do
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true)"
    if [ "$code" = "$2" ]; then return 0; fi
    sleep 0.2
  done
  return 1
}

timeout 60 "${pm[@]}" image exists "$IMAGE" || die "no image $IMAGE: build it with deploy/image/build.sh"
backend="$(free_port)"
listen="$(free_port)"
admin="$(free_port)"
while [ "$listen" = "$backend" ]; do listen="$(free_port)"; done
while [ "$admin" = "$backend" ] || [ "$admin" = "$listen" ]; do admin="$(free_port)"; done

install -d -m 0755 "$work/etc"
cat >"$work/etc/kvgate.yaml" <<YAML
admin: {address: "127.0.0.1:$admin"}
drainTimeout: ${DRAIN_TIMEOUT}s
listeners:
  - {name: plain, address: "127.0.0.1:$listen", protocols: [http1, http2]}
routes:
  - {name: all, backends: [{pool: sim}]}
pools:
  - {name: sim, endpoints: ["127.0.0.1:$backend"], protocol: http1}
YAML
chmod 0644 "$work/etc/kvgate.yaml"

echo "== smoke: $IMAGE (runtime $RUNTIME, $sf): simulator on :$backend, kvgate on :$listen, admin on :$admin"
timeout 120 "${pm[@]}" run -d --name "$sim" "${run_flags[@]}" \
  "$IMAGE" sim --addr "127.0.0.1:$backend" >/dev/null || die "the simulator container did not start"
wait_http "http://127.0.0.1:$backend/v1/models" 200 30 || die "the simulator does not answer on :$backend"

t0=$SECONDS
timeout 120 "${pm[@]}" run -d --name "$name" "${run_flags[@]}" \
  --user 65532:65532 -v "$work/etc:/etc/kvgate:ro" \
  "$IMAGE" >/dev/null || die "the kvgate container did not start"
wait_http "http://127.0.0.1:$admin/readyz" 200 30 || die "/readyz did not answer 200 within 30 s"
echo "ok   /readyz 200 ($((SECONDS - t0)) s after podman run)"

body='{"model":"sim-model","max_tokens":8,"messages":[{"role":"user","content":"hello from the smoke test"}]}'
resp="$(curl -sS --max-time 20 -w '\n%{http_code}' -H 'content-type: application/json' \
  -d "$body" "http://127.0.0.1:$listen/v1/chat/completions")" || die "the proxied request failed"
code="${resp##*$'\n'}"
[ "$code" = 200 ] || die "the proxied request answered $code: ${resp%$'\n'*}"
grep -q '"choices"' <<<"$resp" || die "the proxied answer has no choices: ${resp%$'\n'*}"
echo "ok   POST /v1/chat/completions through kvgate: 200"

# A stream of 400 tokens (about 4 s at the simulator's 10 ms a token), in
# flight when SIGTERM arrives.
stream='{"model":"sim-model","stream":true,"max_tokens":400,"ignore_eos":true,"messages":[{"role":"user","content":"stream please"}]}'
curl -sS -N --max-time 60 -H 'content-type: application/json' -d "$stream" \
  "http://127.0.0.1:$listen/v1/chat/completions" >"$work/stream.txt" 2>"$work/stream.err" &
stream_pid=$!
deadline=$((SECONDS + 20))
until grep -q '^data: ' "$work/stream.txt" 2>/dev/null; do
  [ "$SECONDS" -lt "$deadline" ] || die "the stream sent nothing within 20 s"
  sleep 0.1
done

echo "== smoke: podman stop -t $STOP_TIMEOUT (SIGTERM) with a stream in flight"
t0=$SECONDS
timeout $((STOP_TIMEOUT + 30)) "${pm[@]}" stop -t "$STOP_TIMEOUT" "$name" >/dev/null 2>"$work/stop.err" &
stop_pid=$!
if wait_http "http://127.0.0.1:$admin/readyz" 503 5; then
  echo "ok   /readyz 503 while draining"
else
  die "/readyz did not turn 503 within 5 s of SIGTERM"
fi
wait "$stop_pid" || die "podman stop failed: $(cat "$work/stop.err")"
took=$((SECONDS - t0))
wait "$stream_pid" || die "the stream was cut: $(cat "$work/stream.err")"
stream_pid=""
tail -n 3 "$work/stream.txt" | grep -q '^data: \[DONE\]' || die "the stream did not end with data: [DONE]"
echo "ok   the stream in flight finished ($(grep -c '^data: ' "$work/stream.txt") events, ending with [DONE])"

exit_code="$(timeout 20 "${pm[@]}" inspect --format '{{.State.ExitCode}}' "$name")"
[ "$exit_code" = 0 ] || die "kvgate exited $exit_code, not 0"
[ "$took" -le $((DRAIN_TIMEOUT + 5)) ] || die "kvgate took $took s to stop, beyond the drain bound ${DRAIN_TIMEOUT}s"
echo "ok   kvgate exited 0, $took s after SIGTERM (drain bound ${DRAIN_TIMEOUT} s, SIGKILL at $STOP_TIMEOUT s)"
ok=1
echo "== smoke: passed"
