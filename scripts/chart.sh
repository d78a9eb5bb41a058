#!/usr/bin/env bash
# Draws docs/reference-plan.svg and docs/reference-plan.png: the reference plan as charted by
# `alliancectl plot`, against a throwaway allianced (temporary data directory, free loopback
# port) that loads deploy/reference-plan.json on its first start. The server is stopped after.
#
# Environment: CARGO (default cargo), PROFILE (debug or release, default debug),
# FROM / TO (the period, default 2024-01-01 to 2035-12-31), OUT (default docs/reference-plan),
# SIM_OUT (default docs/reference-simulation: the simulation's coverage bands, seed 1, the model's
# default trials and window).
# The chart is a what-if view: the plan's proposals (retrenchment, ROK investments, the wartime
# OPCON transfer) are proposed decisions, not adopted ones.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
PROFILE=${PROFILE:-debug}
FROM=${FROM:-2024-01-01}
TO=${TO:-2035-12-31}
OUT=${OUT:-docs/reference-plan}
SIM_OUT=${SIM_OUT:-docs/reference-simulation}

case $PROFILE in
  debug) build_flags=() ;;
  release) build_flags=(--release) ;;
  *) echo "chart.sh: PROFILE must be debug or release, not $PROFILE" >&2; exit 2 ;;
esac
"$CARGO" build -q "${build_flags[@]}" -p allianced -p alliancectl
source scripts/lib/allianced.sh
bin="$(cargo_target_dir)/$PROFILE"

tmp=$(mktemp -d)
trap 'stop_allianced; rm -rf "$tmp"' EXIT
start_allianced "$bin/allianced" "$tmp" \
  --token-file deploy/dev-tokens.toml --reference-plan deploy/reference-plan.json
echo "chart.sh: allianced listening on $address" >&2

export ALLIANCE_SERVER="http://$address" ALLIANCE_TOKEN=dev-auditors
plan=$("$bin/alliancectl" plan list --output json |
  grep -o '"plan_id":"[^"]*"' | head -n 1 | cut -d '"' -f 4)
if [[ -z $plan ]]; then
  echo "chart.sh: the server lists no plan" >&2
  exit 1
fi
mkdir -p "$(dirname "$OUT")"
"$bin/alliancectl" plot --plan-id "$plan" --from "$FROM" --to "$TO" --what-if --out "$OUT" \
  --model deploy/simulation-model.toml

# The simulation of the same what-if view: coverage bands per area, U.S. drawdown, OPCON date.
mkdir -p "$(dirname "$SIM_OUT")"
run=$("$bin/alliancectl" simulate "$plan" --what-if --seed 1 --plot "$SIM_OUT.png" --output json |
  grep -o '"run_id": *"[^"]*"' | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')
"$bin/alliancectl" simulation get "$run" --plot "$SIM_OUT.svg"
