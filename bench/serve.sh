#!/usr/bin/env bash
# Serving throughput and latency: the serving worker (the demo's gbdt model: 100 trees of
# depth 6; real handler with
# routing, prediction log to MinIO and metrics) against a bare net/http handler returning a constant,
# same machine, same run. Needs wrk and hey (Debian packages; make bench-deps installs them).
#   bench/serve.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
dir=$(mktemp -d)
go build -o "$dir/servebench" ./bench/servebench
go build -o "$dir/grpcload" ./bench/grpcload
# The prediction log goes to a MinIO (./bin/minio, make tools installs it), as in production.
user="bench-$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')" pass=$(od -An -tx1 -N18 /dev/urandom | tr -d ' \n')
mkdir -p "$dir/minio"
MINIO_ROOT_USER=$user MINIO_ROOT_PASSWORD=$pass MINIO_BROWSER=off MINIO_UPDATE=off \
  bin/minio server "$dir/minio" --quiet --address 127.0.0.1:19000 --console-address 127.0.0.1:19001 >"$dir/minio.log" 2>&1 &
mpid=$!
for _ in $(seq 100); do bash -c "exec 3<>/dev/tcp/127.0.0.1/19000" 2>/dev/null && break; sleep 0.1; done
"$dir/servebench" -serving 127.0.0.1:18080 -bare 127.0.0.1:18081 -grpc 127.0.0.1:18082 -s3-endpoint http://127.0.0.1:19000 -s3-access-key "$user" -s3-secret-key "$pass" >"$dir/log" 2>&1 &
pid=$!
trap 'kill $pid $mpid 2>/dev/null; wait $pid $mpid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do bash -c "exec 3<>/dev/tcp/127.0.0.1/18080" 2>/dev/null && break; sleep 0.1; done
body='{"routing_key":"store-1/item-1","features":{"price":9.5,"promo":1,"weekday":5,"temperature":6.5,"item_popularity":2.1}}'
explain='{"routing_key":"store-1/item-1","explain":true,"features":{"price":9.5,"promo":1,"weekday":5,"temperature":6.5,"item_popularity":2.1}}'
cat >"$dir/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA
rps() { wrk -t2 -c64 -d"${secs}s" -s "$dir/post.lua" "$1" | awk '/Requests\/sec/ {print $2}'; }
# gRPC and the same request as REST v2 JSON, both from one Go load generator (bench/grpcload).
grpc_rps() { "$dir/grpcload" -addr 127.0.0.1:18082 -c 64 -d "${secs}s" "$@" | awk '{print $6}'; }
# Three interleaved rounds (the load generator shares the machine): medians.
bares=() serves=() grpcs=() v2s=()
for round in 1 2 3; do
  bares+=("$(rps http://127.0.0.1:18081/v1/models/demand:predict)")
  serves+=("$(rps http://127.0.0.1:18080/v1/models/demand:predict)")
  grpcs+=("$(grpc_rps)")
  v2s+=("$(grpc_rps -rest http://127.0.0.1:18080)")
  echo "round $round: bare ${bares[-1]} req/s, serving REST v1 ${serves[-1]} req/s; Go client: gRPC ${grpcs[-1]} req/s, REST v2 ${v2s[-1]} req/s"
done
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
bare=$(median "${bares[@]}")
serve=$(median "${serves[@]}")
echo "max throughput (wrk -t2 -c64, ${secs}s, median of 3): bare handler $bare req/s, driftline serving $serve req/s"
awk -v s="$serve" -v b="$bare" 'BEGIN { printf "ratio of the medians: serving reaches %.0f%% of the bare handler\n", 100 * s / b }'
ratios=()
for i in 0 1 2; do ratios+=("$(awk -v s="${serves[$i]}" -v b="${bares[$i]}" 'BEGIN { printf "%.3f", s / b }')"); done
echo "paired ratios per round: ${ratios[*]}; median $(median "${ratios[@]}")"
p99() { hey -z "${secs}s" -c 10 -q 100 -m POST -T application/json -d "$1" http://127.0.0.1:18080/v1/models/demand:predict | awk '/ 99%/ {print $3 * 1000 " ms"}'; }
echo "p99 at 1,000 req/s (hey -c 10 -q 100, ${secs}s): $(p99 "$body"); with explain=true: $(p99 "$explain")"
echo "Go client (bench/grpcload, the five features one FP64 tensor each), 64 clients, ${secs}s, median of 3: gRPC $(median "${grpcs[@]}") req/s," \
  "REST v2 $(median "${v2s[@]}") req/s; p99 at 1,000 req/s (10 clients): gRPC" \
  "$("$dir/grpcload" -addr 127.0.0.1:18082 -c 10 -qps 1000 -d "${secs}s" | awk '{print $10 " ms"}'), REST v2" \
  "$("$dir/grpcload" -rest http://127.0.0.1:18080 -c 10 -qps 1000 -d "${secs}s" | awk '{print $10 " ms"}')"
sleep 3 # the last flush of the prediction log
m=$(curl -s http://127.0.0.1:18080/metrics)
answered=$(echo "$m" | awk '/^driftline_serving_requests_total\{.*code="200"/ {s += $2} END {printf "%d", s}')
dropped=$(echo "$m" | awk '/^driftline_serving_prediction_log_dropped_total/ {printf "%d", $2}')
echo "prediction log to MinIO: $answered answers, $dropped records dropped ($(awk -v d="$dropped" -v a="$answered" 'BEGIN { printf "%.3f%%", a ? 100 * d / a : 0 }'))"
