#!/usr/bin/env bash
# The one pass read as partitions (a day file each) over 1, 2 and 4 pipeline worker processes,
# GOMAXPROCS=1 each, on one generated retail window in MinIO, with the Temporal dev server;
# both started here from ./bin (make tools installs them). Prints each count's seconds,
# MB/s and its ratio to one worker.
# Then, with PARTITIONS > 0, a real run of the loop over PARTITIONS day files of 20 rows, one
# partition each, on 2 workers: its outcome, and every history it made (events, size, the
# largest event), against Temporal's warning of 10,240 events. HOLDOUT (default 7) is the
# holdout's days, so the partitions its evaluation fans out over (children of 500 beyond 500).
#   bench/fanout.sh [STORES] [ITEMS] [DAYS] [PARTITIONS] [HOLDOUT]   (default 200 x 500 x 28 = 2.8M rows; 0; 7)
# DAYS 0 skips the scaling curve.
set -euo pipefail
cd "$(dirname "$0")/.."
stores=${1:-200}
items=${2:-500}
days=${3:-28}
partitions=${4:-0}
holdout=${5:-7}
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
tport=$((port + 2))
user=bench-$RANDOM$RANDOM
pass=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
MINIO_ROOT_USER=$user MINIO_ROOT_PASSWORD=$pass MINIO_UPDATE=off MINIO_BROWSER=off \
  bin/minio server "$dir/data" --quiet --address "127.0.0.1:$port" --console-address "127.0.0.1:$((port + 1))" >"$dir/minio.log" 2>&1 &
minio=$!
bin/temporal server start-dev --headless --ip 127.0.0.1 --port "$tport" --http-port "$((port + 3))" --metrics-port "$((port + 4))" \
  --db-filename "$dir/temporal.db" --log-level warn >"$dir/temporal.log" 2>&1 &
temporal=$!
trap 'kill $minio $temporal 2>/dev/null; wait $minio $temporal 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/minio/health/live" >/dev/null && break; sleep 0.1; done
for _ in $(seq 300); do bash -c "exec 3<>/dev/tcp/127.0.0.1/$tport" 2>/dev/null && break; sleep 0.1; done
go build -o "$dir/driftline" ./cmd/driftline
go build -o "$dir/fanoutbench" ./bench/fanoutbench
if [ "$days" -gt 0 ]; then
  FANOUTBENCH_ACCESS_KEY=$user FANOUTBENCH_SECRET_KEY=$pass FANOUTBENCH_QUIET=1 \
    "$dir/fanoutbench" -endpoint "http://127.0.0.1:$port" -temporal "127.0.0.1:$tport" -driftline "$dir/driftline" \
    -stores "$stores" -items "$items" -days "$days"
fi
if [ "$partitions" -gt 0 ]; then
  # a real run needs the search attributes (and its bucket) the way `driftline setup` makes them
  TEMPORAL_ADDRESS=127.0.0.1:$tport DRIFTLINE_S3_ENDPOINT=http://127.0.0.1:$port DRIFTLINE_S3_BUCKET=fanoutmany \
    DRIFTLINE_S3_ACCESS_KEY=$user DRIFTLINE_S3_SECRET_KEY=$pass "$dir/driftline" setup >/dev/null
  FANOUTBENCH_ACCESS_KEY=$user FANOUTBENCH_SECRET_KEY=$pass FANOUTBENCH_QUIET=1 \
    "$dir/fanoutbench" -endpoint "http://127.0.0.1:$port" -temporal "127.0.0.1:$tport" -driftline "$dir/driftline" -partitions "$partitions" -holdout "$holdout"
fi
