# Alliance planning backend. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
DATA_DIR ?= data
LISTEN ?= 127.0.0.1:50051

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build every crate and binary (debug)
	$(CARGO) build --workspace --bins

.PHONY: run
run: ## Build and start allianced on the embedded log (data in ./data, gRPC on 127.0.0.1:50051)
	$(CARGO) build --release -p alliancectl
	$(CARGO) run --release -q -p allianced -- --data-dir $(DATA_DIR) --listen $(LISTEN)

.PHONY: test
test: ## Run every test on both logs (starts the project's own Kafka broker, stops it after)
	$(CARGO) build --workspace --bins --tests
	deploy/kafka/kafka.sh up >&2; \
	trap 'deploy/kafka/kafka.sh down >&2' EXIT; \
	eval "$$(deploy/kafka/kafka.sh env)"; \
	$(CARGO) test --workspace --no-fail-fast
	CARGO_TARGET_DIR=$$($(CARGO) metadata -q --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p') tests/interop/run.sh

.PHONY: kafka-up
kafka-up: ## Fetch Apache Kafka (Maven Central, cached) and start a local KRaft broker
	deploy/kafka/kafka.sh up

.PHONY: kafka-down
kafka-down: ## Stop the local Kafka broker and delete its data
	deploy/kafka/kafka.sh down

.PHONY: bench
bench: ## Measure commands/s on both logs beside raw Kafka, the read models, and gRPC load with ghz on the embedded log; writes docs/benchmarks.md
	$(CARGO) build --release -p alliance-bench -p allianced
	bootstrap=$$(deploy/kafka/kafka.sh up | tail -n 1 | awk '{print $$NF}'); \
	trap 'deploy/kafka/kafka.sh down >&2' EXIT; \
	ALLIANCE_KAFKA_BOOTSTRAP=$$bootstrap $(CARGO) run --release -q -p alliance-bench -- --out docs/benchmarks.md
	ALLIANCE_CLUSTER_DIR=/nonexistent CARGO=$(CARGO) OUT=docs/benchmarks.md scripts/ghz-bench.sh

FUZZ_SECONDS ?= 300

.PHONY: fuzz
fuzz: ## Fuzz command requests and log records, FUZZ_SECONDS (300) each, then minimise fuzz/corpus (installs cargo-fuzz, cached)
	scripts/fuzz.sh $(FUZZ_SECONDS)

.PHONY: bench-grpc
bench-grpc: ## gRPC load with ghz on a command and the posture query, each beside the health check (the cluster of make up, if running); writes docs/benchmarks.md
	CARGO=$(CARGO) OUT=docs/benchmarks.md scripts/ghz-bench.sh

.PHONY: deploy-check
deploy-check: ## Validate the deployment artefacts in deploy/ (tools from the Go proxy, PyPI, Maven Central; cached), then start every server of compose and of the Kubernetes overlay as a process and require SERVING
	scripts/deploy-check.sh
	CARGO=$(CARGO) scripts/deploy-start-check.sh

.PHONY: lint
lint: ## cargo fmt --check, clippy with warnings as errors, the crate graph's layers, buf lint and breaking check of proto/
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	CARGO=$(CARGO) scripts/check-layers.sh
	scripts/buf.sh

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all

.PHONY: clean-data
clean-data: ## Delete the local data directory (the embedded event log)
	rm -rf $(DATA_DIR)

.PHONY: chart
chart: ## Chart the reference plan (what-if) and its simulation into docs/reference-{plan,simulation}.{svg,png}
	CARGO=$(CARGO) scripts/chart.sh

# The cargo target directory (CARGO_TARGET_DIR, or the workspace's), for the scripts that run
# the release binaries.
TARGET_DIR_OF_CARGO = $$($(CARGO) metadata -q --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')

.PHONY: up
up: ## Start a local cluster: Kafka, 2 allianced, 2 alliance-projection, alliance-simulation
	$(CARGO) build --release -p allianced -p alliance-projection-service -p alliance-simulation-service -p alliancectl
	CARGO_TARGET_DIR=$(TARGET_DIR_OF_CARGO) deploy/local/cluster.sh up

.PHONY: status
status: ## The local cluster: each process (pid, address), its health and its read models' lag
	CARGO_TARGET_DIR=$(TARGET_DIR_OF_CARGO) deploy/local/cluster.sh status

.PHONY: down
down: ## Stop the local cluster and its broker (the logs stay in .cluster/logs)
	deploy/local/cluster.sh down
