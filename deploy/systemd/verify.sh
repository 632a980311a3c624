#!/usr/bin/env bash
# Checks deploy/systemd/kvgate.service offline, without booting systemd:
#   - `systemd-analyze verify` in a throwaway root holding the unit and
#     stand-ins for /usr/local/bin/kvgate and /bin/kill (verify checks that
#     the Exec* commands exist and are executable; it never runs them),
#     failing on any warning, not only on errors;
#   - `systemd-analyze security --offline` prints the unit's exposure score
#     and fails above MAX_EXPOSURE (default 2.5; 0 is the most locked down,
#     10 the least). The score counts settings a network proxy cannot take,
#     such as PrivateNetwork, so it cannot reach 0.
#
#   deploy/systemd/verify.sh
#
# Needs systemd-analyze (Debian/Ubuntu: apt-get install systemd).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
command -v systemd-analyze >/dev/null || { echo "verify.sh: systemd-analyze is missing (apt-get install systemd)" >&2; exit 2; }
MAX_EXPOSURE="${MAX_EXPOSURE:-2.5}"

r="$(mktemp -d)"
trap 'rm -rf "$r"' EXIT
# A /usr-merged tree: /bin -> usr/bin, as on Debian 12 and most current distributions.
mkdir -p "$r/usr/local/bin" "$r/usr/bin" "$r/usr/lib/systemd" "$r/etc/systemd/system"
ln -s usr/bin "$r/bin"
printf '#!/bin/sh\nexit 0\n' >"$r/usr/local/bin/kvgate"
cp "$r/usr/local/bin/kvgate" "$r/usr/bin/kill"
chmod 0755 "$r/usr/local/bin/kvgate" "$r/usr/bin/kill"
# The distribution's units (targets the unit refers to, such as multi-user.target).
cp -a /usr/lib/systemd/system "$r/usr/lib/systemd/"
cp deploy/systemd/kvgate.service "$r/etc/systemd/system/kvgate.service"

status=0
if ! out="$(systemd-analyze verify --root="$r" --man=no /etc/systemd/system/kvgate.service 2>&1)" || [ -n "$out" ]; then
  printf '%s\n' "$out" | sed "s|$r||g" >&2
  echo "verify.sh: systemd-analyze verify found problems in deploy/systemd/kvgate.service" >&2
  status=1
else
  echo "systemd-analyze verify: no problems"
fi

sec="$(systemd-analyze security --offline=true --root="$r" --no-pager /etc/systemd/system/kvgate.service 2>&1 || true)"
line="$(printf '%s\n' "$sec" | grep -E 'Overall exposure level' || true)"
score="$(printf '%s\n' "$line" | grep -Eo '[0-9]+\.[0-9]+' | head -1)"
if [ -z "$score" ]; then
  printf '%s\n' "$sec" | tail -5 >&2
  echo "verify.sh: systemd-analyze security gave no exposure score" >&2
  status=1
else
  echo "systemd-analyze security:${line#*:}"
  if awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s > m) }'; then
    printf '%s\n' "$sec" | grep -E '^✗' >&2 || true
    echo "verify.sh: exposure $score is above $MAX_EXPOSURE" >&2
    status=1
  fi
fi
exit $status
