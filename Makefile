# Driftline: `make demo` runs the whole loop locally; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

BIN  := $(CURDIR)/bin
DATA := $(CURDIR)/.data

# Pinned tool versions (installed into ./bin by `make tools`).
TEMPORAL_CLI_VERSION  := v1.5.1
# The Temporal server on PostgreSQL for the production-topology fault campaign (later
# versions need a newer Go).
TEMPORAL_SERVER_VERSION := v1.30.4
MINIO_VERSION         := v0.0.0-20260212201848-7aac2a2c5b7c
STATICCHECK_VERSION   := v0.8.2
WORKFLOWCHECK_VERSION := v0.6.0
# Helm v4 for the chart's tests (deploy/helm: lint, template, strict decoding; no cluster).
HELM_VERSION          := v4.3.2
# The cloud storage emulators the objstore providers are tested on: fake-gcs-server (a Go
# module, built into ./bin) and Azurite (npm, installed under ./bin/azurite).
FAKE_GCS_VERSION      := v1.56.1
AZURITE_VERSION       := 3.35.0

REVISION := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X github.com/driftline/driftline/internal/buildinfo.revision=$(REVISION)

# Short fuzzing inside `make test`; `make fuzz FUZZTIME=10m` for longer.
FUZZTIME ?= 10s

export BIN DATA

.PHONY: help tools build up down demo test lint unit fuzz chaos proto postgres alerting redis bash-completion qemu cc python node bench bench-deps clean

help:
	@echo "make demo   install tools, start Temporal + MinIO + workers, run the loop twice"
	@echo "make test   install tools, lint (gofmt, vet, staticcheck, workflowcheck), run all tests"
	@echo "make up     start the local stack (Temporal dev server :7233/:8233, MinIO :9000, workers)"
	@echo "make down   stop everything make up started"
	@echo "make chaos  the long fault campaign (20 worker SIGKILLs, MinIO/Temporal restarts) on the dev server and on Temporal+PostgreSQL"
	@echo "make bench  speed and memory benchmarks against scipy, XGBoost, scikit-learn, a bare handler (docs/benchmarks.md)"
	@echo "make clean  make down and delete .data/"

$(BIN)/temporal:
	GOBIN=$(BIN) go install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

# go install names the binaries server and sql: each is built into its own directory, renamed.
$(BIN)/temporal-server:
	GOBIN=$(BIN)/.build-temporal-server go install go.temporal.io/server/cmd/server@$(TEMPORAL_SERVER_VERSION)
	mv $(BIN)/.build-temporal-server/server $@ && rmdir $(BIN)/.build-temporal-server

$(BIN)/temporal-sql-tool:
	GOBIN=$(BIN)/.build-temporal-sql go install go.temporal.io/server/cmd/tools/sql@$(TEMPORAL_SERVER_VERSION)
	mv $(BIN)/.build-temporal-sql/sql $@ && rmdir $(BIN)/.build-temporal-sql

# The server's PostgreSQL schema, from the module go install fetched.
$(BIN)/temporal-schema: $(BIN)/temporal-server
	rm -rf $@.tmp && mkdir -p $@.tmp
	cp -r "$$(go env GOMODCACHE)/go.temporal.io/server@$(TEMPORAL_SERVER_VERSION)/schema/postgresql" $@.tmp/
	chmod -R u+w $@.tmp && mv $@.tmp $@

# Debian's promtool and amtool: the alerting rules' unit tests and Alertmanager's routes (deploy/).
alerting:
	@command -v promtool >/dev/null && command -v amtool >/dev/null || (apt-get update && apt-get install -y prometheus prometheus-alertmanager)

# Debian's redis-server (the online store's tests start their own on a free port).
redis:
	@command -v redis-server >/dev/null || (apt-get update && apt-get install -y redis-server)

# Debian's PostgreSQL (the fault campaign starts its own cluster in a temp dir).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update && apt-get install -y postgresql)

# Debian's qemu-user-static: the edge runtime's predictions are checked bit for bit on arm64,
# arm and riscv64 (edge/edge_test.go runs its own test binary under qemu).
qemu:
	@command -v qemu-aarch64-static >/dev/null && command -v qemu-arm-static >/dev/null && command -v qemu-riscv64-static >/dev/null || (apt-get update && apt-get install -y qemu-user-static)

# Debian's gcc: the edge runtime's C99 header is compiled and checked bit for bit (edge/c_test.go).
cc:
	@command -v gcc >/dev/null || (apt-get update && apt-get install -y gcc libc6-dev)

# Debian's Python with scikit-learn, XGBoost and ONNX (/usr/bin/python3): the command trainer's
# examples (examples/sklearn, examples/xgboost) run in cmdtrainer's tests and the end-to-end
# test, and model/testdata/onnx/make.py builds the ONNX fixtures with them.
python:
	@/usr/bin/python3 -c "import sklearn, xgboost, onnx, numpy" 2>/dev/null || (apt-get update && apt-get install -y python3-sklearn python3-xgboost python3-onnx python3-numpy)

# Debian's chromium: the console's browser tests drive it headless (console/browser_test.go).
chromium:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

# Debian's bash-completion: the test of the shell completion cobra generates sources it, as a
# user's shell does.
bash-completion:
	@test -f /usr/share/bash-completion/bash_completion || (apt-get update && apt-get install -y bash-completion)

$(BIN)/minio:
	GOBIN=$(BIN) go install github.com/minio/minio@$(MINIO_VERSION)

# Jaeger for the end-to-end test's traces: github.com/jaegertracing/jaeger v1.76.0 as a Go
# tool of its own module (tools/jaeger: its go.mod pins it; the module has replace
# directives, so `go install pkg@version` refuses it).
$(BIN)/jaeger: tools/jaeger/go.mod
	cd tools/jaeger && go build -o $(BIN)/jaeger github.com/jaegertracing/jaeger/cmd/jaeger

$(BIN)/fake-gcs-server:
	GOBIN=$(BIN) go install github.com/fsouza/fake-gcs-server@$(FAKE_GCS_VERSION)

$(BIN)/azurite/node_modules/.bin/azurite-blob: | node
	npm install --prefix $(BIN)/azurite --no-audit --no-fund azurite@$(AZURITE_VERSION)

# DuckDB (npm @duckdb/node-api, pinned by bench/duckdb/package-lock.json): the benchmarks'
# peer, and the reader of Driftline's outputs in the readability tests (internal/duckdbtest).
bench/duckdb/node_modules/@duckdb/node-api/package.json: bench/duckdb/package-lock.json | node
	cd bench/duckdb && npm ci --no-audit --no-fund --silent

# Debian's nodejs and npm (Azurite and DuckDB run on node).
node:
	@command -v node >/dev/null && command -v npm >/dev/null || (apt-get update && apt-get install -y nodejs npm)

$(BIN)/helm:
	GOBIN=$(BIN) go install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)

$(BIN)/staticcheck:
	GOBIN=$(BIN) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(BIN)/workflowcheck:
	GOBIN=$(BIN) go install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION)

tools: $(BIN)/temporal $(BIN)/minio $(BIN)/jaeger $(BIN)/helm $(BIN)/staticcheck $(BIN)/workflowcheck $(BIN)/temporal-server $(BIN)/temporal-sql-tool $(BIN)/temporal-schema postgres alerting redis chromium bash-completion qemu cc python $(BIN)/fake-gcs-server $(BIN)/azurite/node_modules/.bin/azurite-blob bench/duckdb/node_modules/@duckdb/node-api/package.json

build:
	go build -ldflags "$(LDFLAGS)" -o $(BIN)/driftline ./cmd/driftline
	go build -ldflags "$(LDFLAGS)" -o $(BIN)/driftline-dev ./cmd/driftline-dev

up: $(BIN)/temporal $(BIN)/minio alerting build
	scripts/up.sh

down:
	scripts/down.sh

demo: up
	. $(DATA)/dev.env && $(BIN)/driftline-dev demo

lint: $(BIN)/staticcheck $(BIN)/workflowcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet ./...
	$(BIN)/staticcheck ./...
	$(BIN)/workflowcheck ./...
	cd deploy/helm && go vet ./... && $(BIN)/staticcheck ./...

# The testsuite package holds the end-to-end test and both short fault campaigns (~20 min).
unit:
	go test -count=1 -timeout 40m ./...
	cd deploy/helm && go test -count=1 ./...

# The long campaigns (docs/testing.md): the fault campaign on both topologies with 20 worker
# SIGKILLs each, and the drift A/A test up to a 10M-row window.
chaos: tools
	DRIFT_AA_10M=1 go test -count=1 -timeout 30m -run 'TestAAFlags' -v ./drift
	CHAOS_KILLS=20 go test -count=1 -timeout 90m -run 'TestFaultCampaign' -v ./testsuite
	INGEST_KILLS=50 INGEST_RECORDS=1000000 go test -count=1 -timeout 30m -run 'TestIngestExactlyOnce' -v ./testsuite

# The gRPC service's Go code from serving/oippb/grpc_predict_v2.proto (committed; Debian's
# protoc and the two Go plugins, pinned).
proto:
	command -v protoc >/dev/null || (apt-get update -qq && apt-get install -y -qq protobuf-compiler)
	GOBIN=$(BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	GOBIN=$(BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
	PATH=$(BIN):$$PATH protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative serving/oippb/grpc_predict_v2.proto

fuzz:
	scripts/fuzz.sh FuzzDecodePredict ./serving $(FUZZTIME)
	scripts/fuzz.sh FuzzFastDecodeAgrees ./serving $(FUZZTIME)
	scripts/fuzz.sh FuzzScanFile ./dataset $(FUZZTIME)
	scripts/fuzz.sh FuzzV2Infer ./serving $(FUZZTIME)
	scripts/fuzz.sh FuzzParse ./spec $(FUZZTIME)
	scripts/fuzz.sh FuzzScanObject ./ingest $(FUZZTIME)
	scripts/fuzz.sh FuzzAvroDecode ./ingest $(FUZZTIME)
	scripts/fuzz.sh FuzzGRPCInfer ./serving $(FUZZTIME)
	scripts/fuzz.sh FuzzSignedBody ./edge $(FUZZTIME)
	scripts/fuzz.sh FuzzLoadLightGBM ./model $(FUZZTIME)
	scripts/fuzz.sh FuzzLoadONNX ./model $(FUZZTIME)

test: tools lint unit fuzz

# The console's screenshots in docs/img (docs/observability.md), from its browser test. They are
# committed on purpose (the docs show them; a reader of GitHub sees them); this refreshes them.
screenshots: chromium
	mkdir -p docs/img && DRIFTLINE_SCREENSHOTS=$(CURDIR)/docs/img go test -count=1 -run TestConsoleInChromium ./console

# Benchmarks (not part of make test): numbers in docs/benchmarks.md come from these.
bench-deps:
	@/usr/bin/python3 -c "import scipy" 2>/dev/null || (apt-get update && apt-get install -y python3-scipy python3-numpy)
	@command -v wrk >/dev/null && command -v hey >/dev/null || (apt-get update && apt-get install -y wrk hey)
	@/usr/bin/python3 -c "import xgboost, sklearn" 2>/dev/null || (apt-get update && apt-get install -y xgboost python3-xgboost python3-sklearn)
	@/usr/bin/python3 -c "import pandas" 2>/dev/null || (apt-get update && apt-get install -y python3-pandas)
	@command -v node >/dev/null && command -v npm >/dev/null || (apt-get update && apt-get install -y nodejs npm)

bench: $(BIN)/minio $(BIN)/temporal bench-deps
	bench/drift.sh
	bench/scan.sh 1024
	bench/serve.sh
	bench/pressure.sh 2000
	bench/models.sh
	bench/loop.sh
	bench/fanout.sh
	bench/duckdb.sh
	bench/coldstart.sh
	bench/edge.sh
	go test -run '^$$' -bench . -benchtime 3x ./drift

clean: down
	rm -rf $(DATA)
