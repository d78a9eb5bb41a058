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
	$(CARGO) build --release -p allianced -p alliancectl
	$(CARGO) run --release -q -p allianced -- --data-dir $(DATA_DIR) --listen $(LISTEN)

.PHONY: test
test: ## Run every test: domain, event log, gRPC and end-to-end (starts what they need)
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --no-fail-fast

.PHONY: bench
bench: ## Measure command throughput and latency; writes docs/benchmarks.md
	$(CARGO) build --release -p alliance-bench
	$(CARGO) run --release -q -p alliance-bench -- --out docs/benchmarks.md

.PHONY: lint
lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all

.PHONY: clean-data
clean-data: ## Delete the local data directory (the embedded event log)
	rm -rf $(DATA_DIR)
