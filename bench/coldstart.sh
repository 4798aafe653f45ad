#!/usr/bin/env bash
# Serving cold start: process start to first ready answer (/readyz 200, then a prediction) of
# `driftline serve` with the demo model, a 1,000-tree model and 100 models, the registry on
# MinIO (started here from ./bin). Goal: under 1 s with the demo model.
#   bench/coldstart.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
user=bench-$RANDOM$RANDOM
pass=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
MINIO_ROOT_USER=$user MINIO_ROOT_PASSWORD=$pass MINIO_UPDATE=off MINIO_BROWSER=off \
  bin/minio server "$dir/data" --quiet --address "127.0.0.1:$port" --console-address "127.0.0.1:$((port + 1))" >"$dir/minio.log" 2>&1 &
minio=$!
trap 'kill $minio 2>/dev/null; wait $minio 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/minio/health/live" >/dev/null && break; sleep 0.1; done
go build -o "$dir/driftline" ./cmd/driftline
go build -o "$dir/coldstartbench" ./bench/coldstartbench
"$dir/coldstartbench" -s3-endpoint "http://127.0.0.1:$port" -s3-access-key "$user" -s3-secret-key "$pass" -driftline "$dir/driftline" -runs "$runs"
