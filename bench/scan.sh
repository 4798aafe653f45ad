#!/usr/bin/env bash
# Validate-step scan: a window of Parquet in MinIO (started here from ./bin) read back with
# ranged GETs and the demo contract; prints throughput and the scanning process's peak RSS, then
# the real Validate activity over the same window (contract, sketches, quarantine, report).
#   bench/scan.sh [MB] [ROWS_PER_GROUP]
set -euo pipefail
cd "$(dirname "$0")/.."
mb=${1:-1024}
group=${2:-131072}
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
user=bench-$RANDOM$RANDOM
pass=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
export SCANBENCH_ACCESS_KEY=$user SCANBENCH_SECRET_KEY=$pass
MINIO_ROOT_USER=$user MINIO_ROOT_PASSWORD=$pass MINIO_UPDATE=off \
  bin/minio server "$dir/data" --quiet --address "127.0.0.1:$port" --console-address "127.0.0.1:$((port + 1))" >"$dir/minio.log" 2>&1 &
minio=$!
trap 'kill $minio 2>/dev/null; wait $minio 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null && break; sleep 0.1; done
go build -o "$dir/scanbench" ./bench/scanbench
"$dir/scanbench" -endpoint "http://127.0.0.1:$port" -gen -mb "$mb" -group "$group"
"$dir/scanbench" -endpoint "http://127.0.0.1:$port" -scan ${SCAN_CPUPROFILE:+-cpuprofile "$SCAN_CPUPROFILE"}
"$dir/scanbench" -endpoint "http://127.0.0.1:$port" -validate
