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
