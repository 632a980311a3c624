#!/usr/bin/env bash
# Stacks the latency charts (hit rate, TTFT p50 and p99 per picker) of the
# generated workloads, written by the replays into {tenants,agentic,burst}/
# latency.svg, into one PNG with headless Chromium:
#
#   benchmarks/replay/chart.sh     # writes benchmarks/replay/workloads.png
#
# Needs chromium (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")"
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
[ -n "$browser" ] || { echo "chart.sh: no chromium on PATH (apt-get install chromium)" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
height=0
width=0
body=""
for w in tenants agentic burst; do
  svg="$w/latency.svg"
  [ -f "$svg" ] || { echo "chart.sh: $svg is missing: run the $w replay first (README.md)" >&2; exit 1; }
  sw="$(sed -n 's/^<svg[^>]* width="\([0-9]*\)".*/\1/p' "$svg")"
  sh="$(sed -n 's/^<svg[^>]* height="\([0-9]*\)".*/\1/p' "$svg")"
  width=$(( sw > width ? sw : width ))
  height=$(( height + sh + 30 ))
  body="$body<h3>workload: $w</h3><img src=\"file://$PWD/$svg\" width=\"$sw\" height=\"$sh\">"
done
cat > "$tmp/page.html" <<HTML
<!doctype html><html><head><style>
body{margin:0;background:#fff;font-family:sans-serif}
h3{margin:0;padding:6px 10px 0;height:24px;font-size:16px}
img{display:block}
</style></head><body>$body</body></html>
HTML
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --allow-file-access-from-files \
  --window-size="$width,$height" --screenshot="$PWD/workloads.png" "file://$tmp/page.html" >/dev/null 2>&1
echo "wrote $PWD/workloads.png (${width}x${height})"
