#!/usr/bin/env bash
# One monitoring window over logged predictions (monitor.Compute: KPIs, input and prediction
# drift, the loss estimate, live MAE, disparate impact): seconds, rows/s and peak RSS.
#   bench/monitor.sh [ROWS] [FEATURES]      (default 1,000,000 x 20; issue 14's target: 2 s)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/monitorbench" ./bench/monitorbench
"$dir/monitorbench" -rows "${1:-1000000}" -features "${2:-20}" "${@:3}"   # -json-inputs: an older part's inputs
