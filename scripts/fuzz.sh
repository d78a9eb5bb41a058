#!/usr/bin/env bash
# Fuzzes the two places where untrusted bytes enter the system, one target after the other:
#   command   a PlanCommands request: decode, convert, decide against the reference plan, evolve
#   envelope  a record read from the log: decode as the command service, the audit and the
#             projection read it
# Installs cargo-fuzz (pinned, cached under ~/.cache/alliance/tools) when missing, builds the
# targets in fuzz/ with libFuzzer on the stable toolchain (RUSTC_BOOTSTRAP=1 enables the
# nightly-only flags cargo-fuzz passes), runs each for SECONDS (default 300) on one core, and
# prints each target's executions and corpus size. New corpus entries land in fuzz/corpus/<target>,
# which is minimised afterwards; a crash is saved in fuzz/artifacts/<target>/ and fails the script.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# Environment:
#   FUZZ_SANITIZER  address (the default where the toolchain ships its runtime) or none
#   FUZZ_CMIN=0     keep each corpus as fuzzed; by default it is minimised afterwards (cargo fuzz
#                   cmin, on coverage edges only, so the corpus kept in the repository stays small)
#   FUZZ_JOBS       cargo build jobs (default 2); the fuzzing itself runs on one core
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2
SECONDS_PER_TARGET=${1:-300}
shift || true
TARGETS=("$@")
if [[ ${#TARGETS[@]} -eq 0 ]]; then
    TARGETS=(command envelope)
fi
SANITIZER=${FUZZ_SANITIZER:-}
if [[ -z $SANITIZER ]]; then
    # AddressSanitizer where the toolchain ships its runtime (x86_64 Linux does), else none.
    host=$(rustc -vV | sed -n 's/^host: //p')
    if compgen -G "$(rustc --print sysroot)/lib/rustlib/$host/lib/librustc-*_rt.asan.a" >/dev/null; then
        SANITIZER=address
    else
        SANITIZER=none
    fi
fi
JOBS=${FUZZ_JOBS:-2}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=${ALLIANCE_TOOLS:-$HOME/.cache/alliance/tools}/cargo-fuzz
export CARGO_INCREMENTAL=0 CARGO_BUILD_JOBS=$JOBS

installed=$("$TOOLS/bin/cargo-fuzz" --version 2>/dev/null || true)
if [[ $installed != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS"
    # Installed with its own target directory, so the build does not touch the project's.
    env -u CARGO_TARGET_DIR -u RUSTC_BOOTSTRAP \
        cargo install --locked --force "cargo-fuzz@$CARGO_FUZZ_VERSION" --root "$TOOLS"
fi
export PATH=$TOOLS/bin:$PATH
# cargo-fuzz passes flags only nightly accepts (-Zsanitizer, -Cpasses=sancov-module): the
# stable toolchain takes them when bootstrapping is allowed.
export RUSTC_BOOTSTRAP=1

cd "$ROOT/fuzz"
# The targets build with exactly the dependency versions the workspace locks.
cp "$ROOT/Cargo.lock" Cargo.lock

# cargo fuzz SUBCOMMAND [ARGS...], with the sanitizer chosen.
fuzz() {
    cargo fuzz "$1" --sanitizer "$SANITIZER" "${@:2}"
}

declare -A EXECS RATES
for target in "${TARGETS[@]}"; do
    corpus=corpus/$target
    mkdir -p "$corpus" "artifacts/$target"
    log=$(mktemp "${TMPDIR:-/tmp}/fuzz-$target.XXXXXX")
    echo "fuzz: $target for ${SECONDS_PER_TARGET}s (sanitizer: $SANITIZER), log $log"
    status=0
    fuzz run "$target" "$corpus" -- \
        -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096 \
        >"$log" 2>&1 || status=$?
    EXECS[$target]=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    RATES[$target]=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    if [[ $status -ne 0 ]]; then
        tail -n 60 "$log" >&2
        echo "fuzz: $target failed (exit $status); inputs in $ROOT/fuzz/artifacts/$target/" >&2
        exit "$status"
    fi
    if [[ ${FUZZ_CMIN:-1} == 1 ]]; then
        fuzz cmin "$target" "$corpus" -- -use_counters=0 >>"$log" 2>&1
    fi
done

echo
printf '%-10s %14s %10s %8s %10s\n' target executions exec/s inputs bytes
for target in "${TARGETS[@]}"; do
    corpus=corpus/$target
    files=$(find "$corpus" -type f | wc -l)
    bytes=$(find "$corpus" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
    printf '%-10s %14s %10s %8s %10s\n' "$target" "${EXECS[$target]:-?}" "${RATES[$target]:-?}" \
        "$files" "$bytes"
done
