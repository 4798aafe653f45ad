#!/usr/bin/env bash
# The ingest worker's throughput (docs/ingest.md): RECORDS JSON records of the demand contract
# produced to a 4-partition topic on `driftline kafka-dev` (franz-go's kfake, its own process),
# then consumed into Parquet on MinIO (started here) by the ingest worker (records/s, peak RSS),
# and by the limit, a franz-go consumer that only decodes the same records; the ratio.
#   bench/ingest.sh [RECORDS]      (default 1,000,000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
dir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$dir"' EXIT
[ -x bin/minio ] || { echo "bin/minio is missing: make tools installs it" >&2; exit 1; }
go build -o "$dir/driftline" ./cmd/driftline-dev   # driftline with kafka-dev
go build -o "$dir/ingestbench" ./bench/ingestbench
kport=$((20000 + RANDOM % 20000))
"$dir/driftline" kafka-dev --port "$kport" --topics bench:4 >"$dir/kafka.log" 2>&1 &
pids+=($!)
mport=$((kport + 1))
export BENCH_S3_USER=bench BENCH_S3_PASSWORD=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
export BENCH_S3_ENDPOINT=http://127.0.0.1:$mport
MINIO_ROOT_USER=$BENCH_S3_USER MINIO_ROOT_PASSWORD=$BENCH_S3_PASSWORD MINIO_BROWSER=off MINIO_UPDATE=off \
  bin/minio server "$dir/minio" --quiet --address "127.0.0.1:$mport" --console-address "127.0.0.1:$((mport + 1))" >"$dir/minio.log" 2>&1 &
pids+=($!)
for _ in $(seq 150); do curl -sf "$BENCH_S3_ENDPOINT/minio/health/live" >/dev/null && bash -c "exec 3<>/dev/tcp/127.0.0.1/$kport" 2>/dev/null && break; sleep 0.2; done
cat >"$dir/ingest.yaml" <<YAML
apiVersion: driftline.dev/v1
kind: IngestSpec
dataset: retail_demand
model_spec: $PWD/examples/demand.yaml
brokers: [127.0.0.1:$kport]
topics: [bench]
group: bench
max_rows: 100000
flush_idle: 1s
YAML
"$dir/ingestbench" -mode produce -broker "127.0.0.1:$kport" -records "$n"
"$dir/ingestbench" -mode ingest -broker "127.0.0.1:$kport" -records "$n" -spec "$dir/ingest.yaml" ${INGEST_CPUPROFILE:+-cpuprofile "$INGEST_CPUPROFILE"} | tee "$dir/ours.txt"
"$dir/ingestbench" -mode decode -broker "127.0.0.1:$kport" -records "$n" | tee "$dir/peer.txt"
ours=$(sed -E 's/.*s, ([0-9]+) records\/s.*/\1/' "$dir/ours.txt")
theirs=$(sed -E 's/.*s, ([0-9]+) records\/s.*/\1/' "$dir/peer.txt")
echo "ratio: driftline $ours records/s / decode-only $theirs records/s = $(echo "scale=2; $ours / $theirs" | bc)"
