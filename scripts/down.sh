#!/usr/bin/env bash
# Stops every process scripts/up.sh started (state in .data/ is kept; `make clean` removes it).
set -uo pipefail
DATA=${DATA:-$(pwd)/.data}
for name in prometheus weather kafka ingest console api approvals serve worker minio temporal; do
  f="$DATA/pids/$name.pid"
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "stopped $name"
  fi
  rm -f "$f"
done
