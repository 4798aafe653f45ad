#!/usr/bin/env bash
# Memory under concurrent large bodies: the serving worker (bench/servebench, the demo's gbdt
# model, predictions logged in memory) is sent N concurrent requests whose JSON bodies are just
# under the 1 MiB per-request cap, each a batch of instances (hey, a Debian package: make
# bench-deps). Prints the process's resident memory before, its peak (VmHWM) after, and the
# answers by status: with the shared body budget (serve --body-budget, 256 MiB) the calls over it
# get 503 with Retry-After instead of memory.
#   bench/pressure.sh [N=2000]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
dir=$(mktemp -d)
go build -o "$dir/servebench" ./bench/servebench
"$dir/servebench" -serving 127.0.0.1:18080 -bare 127.0.0.1:18081 >"$dir/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do bash -c "exec 3<>/dev/tcp/127.0.0.1/18080" 2>/dev/null && break; sleep 0.1; done
# One instance is about 120 bytes: 8,600 of them are just under 1 MiB.
/usr/bin/python3 - "$dir/body.json" <<'PY'
import json, sys
inst = {"price": 9.5, "promo": 1, "weekday": 5, "temperature": 6.5, "item_popularity": 2.1, "store": 1, "item": 1}
body = {"routing_key": "store-1/item-1", "instances": [inst] * 8600}
s = json.dumps(body)
assert len(s) < 1 << 20, len(s)
open(sys.argv[1], "w").write(s)
PY
rss() { awk -v k="$1" '$1 == k":" {printf "%.0f", $2 / 1024}' "/proc/$pid/status"; }
before=$(rss VmRSS)
ulimit -n 65536 2>/dev/null || true
hey -n "$n" -c "$n" -m POST -T application/json -D "$dir/body.json" -t 60 http://127.0.0.1:18080/v1/models/demand:predict >"$dir/hey" 2>&1 || { cat "$dir/hey"; exit 1; }
echo "$(date -u +%F) $n concurrent bodies of $(stat -c %s "$dir/body.json") bytes to serving"
echo "RSS before: ${before} MiB; peak during: $(rss VmHWM) MiB; after: $(rss VmRSS) MiB"
echo "answers:"
sed -n '/Status code distribution/,/^$/p' "$dir/hey" | tail -n +2
grep -A5 "Error distribution" "$dir/hey" || true
grep "Total:" "$dir/hey"
