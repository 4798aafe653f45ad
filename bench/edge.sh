#!/usr/bin/env bash
# The edge bundle and runtime (docs/edge.md) against the float model and leaves, on one
# XGBoost model of the demo's rows: sizes, load times, per-row latency on one core, the int8
# accuracy cost, memory at rest. Needs Debian's python3-xgboost (make bench-deps).
#   bench/edge.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/edgebench" ./bench/edgebench
"$dir/edgebench" -mode data -dir "$dir"
/usr/bin/python3 bench/edge_xgb.py "$dir"
"$dir/edgebench" -mode measure -dir "$dir"
# The standalone agent's size (stripped, -trimpath) for the device architectures.
for target in amd64 arm64 arm riscv64; do
  GOOS=linux GOARCH=$target GOARM=7 CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$dir/driftline-edge-$target" ./cmd/driftline-edge
  printf "agent binary (cmd/driftline-edge), linux/%s: %d bytes\n" "$target" "$(stat -c %s "$dir/driftline-edge-$target")"
done
