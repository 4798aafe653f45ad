#!/usr/bin/env bash
# The loop's data steps on a generated retail window in MinIO (started here from ./bin):
# per-step seconds and bytes read, total bytes read against the window's size, peak RSS.
# A first run over the same window registers v1 (not measured), so the measured run has a
# production reference to drift against and a champion to evaluate.
#   bench/loop.sh [STORES] [ITEMS] [DAYS]      (default 300 x 500 x 28 = 4.2M rows)
# LOOP_RESUME=1 also times a training retried after its attempt died, resuming from its last
# boosting checkpoint (decision 0017).
set -euo pipefail
cd "$(dirname "$0")/.."
stores=${1:-300}
items=${2:-500}
days=${3:-28}
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
user=bench-$RANDOM$RANDOM
pass=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
MINIO_ROOT_USER=$user MINIO_ROOT_PASSWORD=$pass MINIO_UPDATE=off MINIO_BROWSER=off \
  bin/minio server "$dir/data" --quiet --address "127.0.0.1:$port" --console-address "127.0.0.1:$((port + 1))" >"$dir/minio.log" 2>&1 &
minio=$!
trap 'kill $minio 2>/dev/null; wait $minio 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/minio/health/live" >/dev/null && break; sleep 0.1; done
# LOOPBENCH_BIN: a loopbench built elsewhere (e.g. from an older commit, for a before/after).
bin=${LOOPBENCH_BIN:-$dir/loopbench}
[ -n "${LOOPBENCH_BIN:-}" ] || go build -o "$bin" ./bench/loopbench
LOOPBENCH_ACCESS_KEY=$user LOOPBENCH_SECRET_KEY=$pass \
  "$bin" -endpoint "http://127.0.0.1:$port" -stores "$stores" -items "$items" -days "$days" ${LOOP_CPUPROFILE:+-cpuprofile "$LOOP_CPUPROFILE"} ${LOOP_RESUME:+-resume}
