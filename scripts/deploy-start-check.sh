#!/usr/bin/env bash
# The shipped deployments start: every server of deploy/compose.yaml, and of the Kubernetes example
# overlay as kustomize renders it, runs as a plain process with its container's environment,
# files and arguments (tests/tests/e2e/deploy.rs), on the project's Kafka broker, and must report
# SERVING (the Kubernetes servers over TLS, to their probes' requests). Part of `make
# deploy-check` (and of `make test`, which runs every test). Renders with kubectl or kustomize
# if on PATH, else with go (the Go module proxy). Starts the broker if none runs, and stops only
# a broker it started.
# Usage: scripts/deploy-start-check.sh   (CARGO overrides cargo)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO="${CARGO:-cargo}"
cd "$ROOT"

started=0
if ! deploy/kafka/kafka.sh env >/dev/null 2>&1; then
  deploy/kafka/kafka.sh up >&2
  started=1
fi
stop() { if [[ $started -eq 1 ]]; then deploy/kafka/kafka.sh down >&2; fi; }
trap stop EXIT
eval "$(deploy/kafka/kafka.sh env)"

"$CARGO" build -q -p allianced -p alliance-projection-service -p alliance-simulation-service -p alliancectl
"$CARGO" test -q -p alliance-tests --test e2e deploy::
