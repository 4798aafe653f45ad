#!/usr/bin/env bash
# DuckDB as the peer, same machine, same files, same run (npm @duckdb/node-api, pinned in
# bench/duckdb/package-lock.json, with its engine inside the package; Debian's nodejs):
#   1. the one pass (the Inspect activity: the contract on every row with quarantine,
#      distinct-count sketches, the reference profile, the gbdt bins) over a window of MB of
#      local Parquet (30 day files, held in memory) against DuckDB's read_parquet of the same
#      files running the same contract's checks as SQL (scanbench -sql writes it) with the
#      page cache warm (DuckDB on both cores); the pass in one activity (one core: a pass reads
#      its files on one goroutine) and as 2 partitions side by side (what a worker at
#      --concurrency 2 runs); goal: the one pass within 1.5x of DuckDB's time;
#   2. the feature store's point-in-time join of ROWS feature rows with ENTITIES entity rows
#      (featuresbench) against DuckDB's ASOF JOIN on the same rows (string keys, "k123");
#      goal: faster than DuckDB. Also DuckDB on the keys' integer ids, an easier input.
#   bench/duckdb.sh [MB] [ROWS] [ENTITIES]      (default 1024, 10,000,000, 1,000,000)
set -euo pipefail
cd "$(dirname "$0")/.."
mb=${1:-1024}
rows=${2:-10000000}
ents=${3:-1000000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
(cd bench/duckdb && npm ci --no-audit --no-fund --silent)
go build -o "$dir/scanbench" ./bench/scanbench
go build -o "$dir/featuresbench" ./bench/featuresbench
"$dir/scanbench" -local "$dir/window" -gen -mb "$mb"
"$dir/scanbench" -local "$dir/window" -sql "$dir/scan.sql"
cat "$dir"/window/*/*.parquet >/dev/null # DuckDB reads from a warm page cache; the pass from memory
one=$("$dir/scanbench" -local "$dir/window" -inspect | tee /dev/stderr | sed -n 's/DRIFTLINE_SECONDS=//p')
two=$("$dir/scanbench" -local "$dir/window" -inspect -parts 2 | tee /dev/stderr | sed -n 's/DRIFTLINE_SECONDS=//p')
theirs=$(node bench/duckdb/scan.mjs "$dir/scan.sql" | tee /dev/stderr | sed -n 's/DUCKDB_SECONDS=//p')
awk -v o="$one" -v w="$two" -v t="$theirs" 'BEGIN {
  printf "ratio (scan): the one pass in one activity takes %.2fx DuckDB'"'"'s time (%.2f s vs %.2f s; goal at most 1.5x)\n", o / t, o, t
  printf "ratio (scan): as 2 partitions side by side (a worker at --concurrency 2) %.2fx (%.2f s)\n", w / t, w }'
"$dir/featuresbench" -mode join -rows "$rows" -entities "$ents" -peer-data "$dir/peer" | tee "$dir/ours.txt"
node bench/duckdb/asof.mjs "$dir/peer" | tee "$dir/peer.txt"         # the same rows: string keys
node bench/duckdb/asof.mjs "$dir/peer" int | tee "$dir/peer-int.txt" # their integer ids instead
ours=$(sed -E 's/.*: ([0-9.]+) s,.*/\1/' "$dir/ours.txt")
theirs=$(sed -E 's/.*: ([0-9.]+) s,.*/\1/' "$dir/peer.txt")
ints=$(sed -E 's/.*: ([0-9.]+) s,.*/\1/' "$dir/peer-int.txt")
awk -v o="$ours" -v t="$theirs" -v i="$ints" 'BEGIN {
  printf "ratio (as-of join, the same rows): DuckDB %.2f s / driftline %.2f s = %.2fx (above 1: driftline is faster)\n", t, o, t / o
  printf "ratio (as-of join, DuckDB on integer keys): DuckDB %.2f s / driftline %.2f s = %.2fx\n", i, o, i / o }'
