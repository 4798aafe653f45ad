#!/usr/bin/env bash
# Built-in trainers against their peers, same data, same machine, same run (docs/models.md):
#   gbdt  vs XGBoost hist nthread=2: 1M x 20 synthetic regression, 800k train / 200k validation,
#         100 trees, depth 6, 255 bins, learning rate 0.1: both times (each the best of three
#         trainings: this shared machine's noise only adds time), both MAEs, the ratios;
#         then batch / single-row prediction and TreeSHAP speed of that model;
#   ridge vs scikit-learn StandardScaler+Ridge on the same 800k rows: times and coefficients;
#   memory: 10M x 20 rows streamed through the binner and trained, peak RSS.
# Needs Debian's python3-xgboost and python3-sklearn (make bench-deps installs them).
#   bench/models.sh [ROWS] [FEATURES] [TREES]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
feats=${2:-20}
trees=${3:-100}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/gbdtbench" ./bench/gbdtbench
num() { echo "$1" | sed -n "s/^$2=//p"; }

go_out=$("$dir/gbdtbench" -mode gbdt -rows "$rows" -features "$feats" -trees "$trees" -dir "$dir")
echo "$go_out" | grep -v '^GO_'
py_out=$(/usr/bin/python3 bench/models_peers.py xgb "$dir" "$rows" "$feats" "$trees")
echo "$py_out" | grep -v '^PEER_'
awk -v g="$(num "$go_out" GO_TRAIN_SECONDS)" -v x="$(num "$py_out" PEER_TRAIN_SECONDS)" \
    -v gm="$(num "$go_out" GO_MAE)" -v xm="$(num "$py_out" PEER_MAE)" 'BEGIN {
  printf "ratio: gbdt training takes %.2fx the time of XGBoost (%.3f s vs %.3f s; target <= 1)\n", g / x, g, x
  printf "ratio: gbdt validation MAE is %.4fx XGBoost'"'"'s (%.5f vs %.5f; target within 2%%)\n", gm / xm, gm, xm }'

go_out=$("$dir/gbdtbench" -mode ridge -rows "$rows" -features "$feats" -dir "$dir")
echo "$go_out" | grep -v '^GO_'
py_out=$(/usr/bin/python3 bench/models_peers.py ridge "$dir" "$rows" "$feats")
echo "$py_out" | grep -v '^PEER_\|^COEF_'
awk -v g="$(num "$go_out" GO_RIDGE_SECONDS)" -v s="$(num "$py_out" PEER_RIDGE_SECONDS)" -v d="$(num "$py_out" COEF_MAX_DIFF)" 'BEGIN {
  printf "ratio: ridge takes %.2fx the time of scikit-learn (target <= 2); coefficients differ by at most %s (target 1e-8)\n", g / s, d }'

"$dir/gbdtbench" -mode memory -rows 10000000 -features "$feats" -trees 10
