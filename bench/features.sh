#!/usr/bin/env bash
# The feature store's numbers (docs/features.md):
#   online reads of a 20-feature vector, embedded and Redis on loopback (Debian's
#   redis-server, started here on a free port): p50/p99, reads/s with two readers, writes/s;
#   the point-in-time join of ROWS feature rows with ENTITIES entity rows (rows/s, peak RSS),
#   and pandas' merge_asof on the same rows as the peer (Debian's python3-pandas), with the ratio;
#   materialization of ROWS source rows into each store (rows/s); and, on MinIO (started here
#   on a free port, so the data is outside the measured process): the bounded-memory retrieval
#   of an entity file of ENTITIES rows against ROWS source rows, S3 to S3 (seconds, peak RSS),
#   and one against sixty daily materialization chunks of the demo's view (peak RSS).
#   bench/features.sh [ROWS] [ENTITIES]      (default 10,000,000 x 1,000,000)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
redis_pid=
minio_pid=
trap '[ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null; [ -n "$minio_pid" ] && kill "$minio_pid" 2>/dev/null; rm -rf "$dir"' EXIT
go build -o "$dir/featuresbench" ./bench/featuresbench
port=$((20000 + RANDOM % 20000))
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 50); do bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null && break; sleep 0.1; done
"$dir/featuresbench" -mode online -redis "127.0.0.1:$port"
"$dir/featuresbench" -mode join -rows "${1:-10000000}" -entities "${2:-1000000}" -peer-data "$dir/peer" | tee "$dir/ours.txt"
/usr/bin/python3 bench/features_pandas.py "$dir/peer" | tee "$dir/peer.txt"
ours=$(sed -E 's/.*: ([0-9.]+) s,.*/\1/' "$dir/ours.txt")
theirs=$(sed -E 's/.*: ([0-9.]+) s,.*/\1/' "$dir/peer.txt")
echo "ratio: pandas $theirs s / driftline $ours s = $(echo "scale=2; $theirs / $ours" | bc)x (above 1: driftline is faster)"
"$dir/featuresbench" -mode materialize -rows "${1:-10000000}" -redis "127.0.0.1:$port"
[ -x bin/minio ] || { echo "bin/minio is missing: make tools installs it" >&2; exit 1; }
mport=$((20000 + RANDOM % 20000))
export BENCH_S3_USER=bench BENCH_S3_PASSWORD=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
export BENCH_S3_ENDPOINT=http://127.0.0.1:$mport
MINIO_ROOT_USER=$BENCH_S3_USER MINIO_ROOT_PASSWORD=$BENCH_S3_PASSWORD MINIO_BROWSER=off MINIO_UPDATE=off \
  bin/minio server "$dir/minio" --quiet --address "127.0.0.1:$mport" --console-address "127.0.0.1:$((mport + 1))" >"$dir/minio.log" 2>&1 &
minio_pid=$!
for _ in $(seq 150); do curl -sf "$BENCH_S3_ENDPOINT/minio/health/live" >/dev/null && break; sleep 0.2; done
"$dir/featuresbench" -mode retrieve-data -rows "${1:-10000000}" -entities "${2:-1000000}"
"$dir/featuresbench" -mode retrieve
"$dir/featuresbench" -mode chunks-data
"$dir/featuresbench" -mode chunks-s3 -days 1
"$dir/featuresbench" -mode chunks-s3 -days 60
