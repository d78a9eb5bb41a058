#!/usr/bin/env bash
# Checks the crate graph's layers (ARCHITECTURE.md): the read side, the simulation and the shared
# platform never depend on the command service, and the pure domain on no I/O crate. Each
# "crate: forbidden…" pair below fails the check when `cargo tree` (normal dependencies) shows
# the crate reaching a forbidden one.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO="${CARGO:-cargo}"

rules=(
  "alliance-projection: alliance-commands"
  "alliance-simulation: alliance-commands"
  "alliance-projection-service: alliance-commands"
  "alliance-simulation-service: alliance-commands"
  "alliance-server: alliance-commands alliance-projection alliance-simulation"
  "alliance-record: alliance-commands alliance-server alliance-projection"
  "alliance-domain: tonic prost rusqlite rdkafka tokio alliance-proto alliance-eventlog"
  "alliance-stdx: tonic tokio alliance-domain alliance-server"
)

failed=0
for rule in "${rules[@]}"; do
  crate="${rule%%:*}"
  tree=$("$CARGO" tree -q -p "$crate" -e normal --prefix none)
  for forbidden in ${rule#*:}; do
    if grep -q "^$forbidden v" <<<"$tree"; then
      echo "check-layers.sh: $crate depends on $forbidden" >&2
      failed=1
    fi
  done
done
if [[ $failed -ne 0 ]]; then
  exit 1
fi
echo "check-layers.sh: the crate graph keeps its layers (${#rules[@]} rules)"
