#!/usr/bin/env bash
# Starts the local Driftline stack in the background: Temporal dev server (UI on :8233),
# MinIO, the pipeline worker and the serving worker. State and logs live in .data/.
# Temporal and MinIO keep running across calls; the workers are restarted to pick up a new build.
set -euo pipefail
BIN=${BIN:-$(pwd)/bin}
DATA=${DATA:-$(pwd)/.data}
mkdir -p "$DATA/pids" "$DATA/minio"

# Development secrets are made here on first start, never committed: MinIO's credentials, the
# API's HS256 token key (--dev), the label key; .data/dev.env exports them (and where
# everything listens) for the CLI: `source .data/dev.env`.
hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
if [ ! -s "$DATA/dev.env" ]; then
  (umask 077; {
    echo "export DRIFTLINE_S3_ENDPOINT=http://127.0.0.1:9000"
    echo "export DRIFTLINE_S3_BUCKET=driftline"
    echo "export DRIFTLINE_S3_ACCESS_KEY=dev-$(hex 8)"
    echo "export DRIFTLINE_S3_SECRET_KEY=$(hex 24)"
    echo "export TEMPORAL_ADDRESS=127.0.0.1:7233"
    echo "export DRIFTLINE_API=http://127.0.0.1:8090"
    echo "export DRIFTLINE_DEV_KEY_FILE=$DATA/api-dev.key"
    echo "export DRIFTLINE_LABEL_KEY_FILE=$DATA/label.key"
  } >"$DATA/dev.env")
fi
grep -q DRIFTLINE_PROMETHEUS "$DATA/dev.env" || echo "export DRIFTLINE_PROMETHEUS=http://127.0.0.1:9090" >>"$DATA/dev.env"
grep -q DRIFTLINE_CONSOLE_URL "$DATA/dev.env" || echo "export DRIFTLINE_CONSOLE_URL=http://127.0.0.1:8091" >>"$DATA/dev.env"
grep -q DRIFTLINE_FEATURES_QUEUE "$DATA/dev.env" || echo "export DRIFTLINE_FEATURES_QUEUE=driftline-features" >>"$DATA/dev.env"
# shellcheck disable=SC1091
. "$DATA/dev.env"

running() { [ -f "$DATA/pids/$1.pid" ] && kill -0 "$(cat "$DATA/pids/$1.pid")" 2>/dev/null; }

start() { # name, command...
  local name=$1; shift
  if running "$name"; then echo "  $name already running (pid $(cat "$DATA/pids/$name.pid"))"; return; fi
  nohup "$@" >"$DATA/$name.log" 2>&1 &
  echo $! >"$DATA/pids/$name.pid"
  echo "  started $name (pid $!, log .data/$name.log)"
}

stop() {
  if running "$1"; then
    local pid; pid=$(cat "$DATA/pids/$1.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$DATA/pids/$1.pid"
}

wait_for() { # description, command
  local what=$1; shift
  for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "$what did not come up; see the logs in .data/" >&2; exit 1
}

echo "== starting the local stack"
start temporal "$BIN/temporal" server start-dev --ip 127.0.0.1 --port 7233 --ui-port 8233 \
  --db-filename "$DATA/temporal.db" --log-level warn
MINIO_ROOT_USER=$DRIFTLINE_S3_ACCESS_KEY MINIO_ROOT_PASSWORD=$DRIFTLINE_S3_SECRET_KEY MINIO_UPDATE=off \
  start minio "$BIN/minio" server "$DATA/minio" --quiet --address 127.0.0.1:9000 --console-address 127.0.0.1:9001
port_open() { bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
wait_for "MinIO" port_open 9000
wait_for "Temporal" port_open 7233
"$BIN/driftline" setup   # waits for both to answer, then creates the bucket and search attributes


# The API's HS256 token key (--dev); its Ed25519 attestation key is created by the API on first
# start. The label key signs the label token of every prediction (serving) and checks the
# labels the canary uses (worker).
[ -s "$DATA/api-dev.key" ] || (umask 077; hex 32 >"$DATA/api-dev.key")
[ -s "$DATA/label.key" ] || (umask 077; hex 32 >"$DATA/label.key")

stop kafka
stop worker
stop serve
stop api
stop console
stop weather
start weather "$BIN/driftline-dev" weather --listen 127.0.0.1:8095
# A Kafka-protocol broker (franz-go's kfake, in memory: restarted empty by each make up) and a
# schema registry (franz-go's srfake) for Avro topics; the demo streams its holiday weeks
# through the broker with the ingest worker (docs/ingest.md).
start kafka "$BIN/driftline-dev" kafka-dev --port 9092 --topics retail.sales:4 --registry-port 8081
start worker "$BIN/driftline" worker --metrics 127.0.0.1:9464 --rbac examples/rbac.yaml \
  --attestation-keys http://127.0.0.1:8090/v1/attestation-keys
# Serving holds the embedded online store (bbolt: one process) and runs the materialization
# chunks for it (task queue driftline-features; driftline features materialize uses it).
# demand_fs reads the feature service demand_forecast from it by store_id and item_id; the
# demo's data is from October 2026, so serving reads the store as of its end (--features-as-of).
start serve "$BIN/driftline" serve --listen 127.0.0.1:8080 --grpc 127.0.0.1:8001 --models demand,demand_fs --poll 1s \
  --online-store "bolt:$DATA/online.db" --features-queue driftline-features \
  --feature-service demand_forecast --entity-attributes store_id,item_id --features-as-of 2026-10-31T00:00:00Z \
  --enrich-feature temperature --enrich-url 'http://127.0.0.1:8095/v1/weather?region={region}' --enrich-default 15
start api "$BIN/driftline" api --dev --listen 127.0.0.1:8090 --rbac examples/rbac.yaml --dev-key-file "$DATA/api-dev.key" --attestation-key-file "$DATA/attestation.key" \
  --feature-queues driftline-features
# The read-only console: the API's dev tokens, the same RBAC (`driftline token --sub alice`).
start console "$BIN/driftline" console --dev --listen 127.0.0.1:8091 --rbac examples/rbac.yaml --dev-key-file "$DATA/api-dev.key" \
  --prometheus http://127.0.0.1:9090
# Debian's Prometheus with the alerting rules (make up installs it), scraping both workers.
mkdir -p "$DATA/prometheus"
start prometheus prometheus --config.file=deploy/prometheus/local.yml --storage.tsdb.path="$DATA/prometheus" \
  --web.listen-address=127.0.0.1:9090 --log.level=warn
wait_for "pipeline worker" port_open 9464
wait_for "serving worker" port_open 8080
wait_for "serving worker (gRPC)" port_open 8001
wait_for "control-plane API" port_open 8090
wait_for "console" port_open 8091
wait_for "Prometheus" port_open 9090
wait_for "Kafka (kafka-dev)" port_open 9092
wait_for "schema registry (kafka-dev)" port_open 8081
echo "== up: Temporal UI http://localhost:8233  MinIO http://127.0.0.1:9000  serving http://127.0.0.1:8080  API http://127.0.0.1:8090  console http://127.0.0.1:8091  Prometheus http://127.0.0.1:9090"
