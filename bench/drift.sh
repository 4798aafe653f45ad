#!/usr/bin/env bash
# Drift report speed: Driftline against looping scipy.stats.ks_2samp, same data, same machine,
# same run. Needs Debian's python3-scipy (make bench-deps installs it). Then the wide table:
# WIDE_ROWS x 1,000 features (default 1,000,000), reference profile and window streamed in
# chunks of 4,096 rows, time and peak RSS (goal: under 10 minutes and 1 GB), with the default
# garbage collection and with GOMEMLIMIT=900MiB.
#   bench/drift.sh [ROWS] [FEATURES] [WIDE_ROWS]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
feats=${2:-20}
wide=${3:-1000000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/driftbench" ./bench/driftbench
go_out=$("$dir/driftbench" -rows "$rows" -features "$feats" -dir "$dir")
echo "$go_out" | grep -v SECONDS
py_out=$(/usr/bin/python3 bench/drift_scipy.py "$dir" "$rows" "$feats")
echo "$py_out" | grep -v SECONDS
g=$(echo "$go_out" | sed -n 's/GO_SECONDS=//p')
s=$(echo "$py_out" | sed -n 's/SCIPY_SECONDS=//p')
f=$(echo "$go_out" | sed -n 's/GO_FULL_SECONDS=//p')
awk -v g="$g" -v s="$s" 'BEGIN { printf "ratio (the drift report, against a reference profile): driftline is %.1fx faster than scipy on full samples (%.3f s vs %.3f s)\n", s / g, g, s }'
awk -v f="$f" -v s="$s" 'BEGIN { printf "ratio (the same work: full reference vs full window, KS per column, one core): driftline is %.2fx scipy (%.3f s vs %.3f s)\n", s / f, f, s }'
if [ "$wide" -gt 0 ]; then
  echo "wide table, the Go runtime's default garbage collection:"
  "$dir/driftbench" -rows "$wide" -features 1000 -chunk 4096
  echo "wide table, GOMEMLIMIT=900MiB (a soft limit, as a worker in a 1 GiB container would set):"
  GOMEMLIMIT=900MiB "$dir/driftbench" -rows "$wide" -features 1000 -chunk 4096
fi
