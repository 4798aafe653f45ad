#!/usr/bin/env bash
# One fuzz target: scripts/fuzz.sh TARGET PACKAGE FUZZTIME
# Go's fuzzing engine can end a run with a bare "context deadline exceeded" when -fuzztime
# runs out while it waits on a worker (no failing input, nothing written to testdata). That is
# the harness, not a finding: such a run is repeated once, and said so. Any other failure (a
# failing input, a panic, a hang caught by the targets' own budgets) fails at once.
set -uo pipefail
target=$1 pkg=$2 time=$3
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for attempt in 1 2; do
  go test -run '^$' -fuzz "$target" -fuzztime "$time" -fuzzminimizetime 5s "$pkg" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] && exit 0
  if [ "$attempt" -eq 1 ] && grep -q 'context deadline exceeded' "$out" && ! grep -qE 'Failing input written|panic:|testdata/fuzz' "$out"; then
    echo "fuzz.sh: $target ended with the engine's bare 'context deadline exceeded' (no failing input); running it once more"
    continue
  fi
  exit "$rc"
done
