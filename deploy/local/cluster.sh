#!/usr/bin/env bash
# A local cluster on loopback: the project's Kafka broker (deploy/kafka/kafka.sh), two allianced
# instances on one topic, two alliance-projection replicas and one alliance-simulation.
#
# Usage:
#   deploy/local/cluster.sh up        start everything; returns once every process is healthy
#                                     (alliancectl status) and every read model holds the
#                                     reference plan as allianced-1 wrote it
#   deploy/local/cluster.sh status    each process (pid, alive, address), then alliancectl status
#                                     over all of them: services, plans, events, lag, snapshot
#   deploy/local/cluster.sh down [--keep]
#                                     stop the processes (SIGTERM, then wait), then the broker;
#                                     deletes the broker's topic and the processes' data dirs
#                                     unless --keep (logs are kept)
#
# Each process gets the settings of deploy/local/cluster.env, then of deploy/local/NAME.env, as
# environment variables; it listens on a free loopback port (127.0.0.1:0) and says where on its
# stdout. Everything the cluster writes is in one directory:
#   $ALLIANCE_CLUSTER_DIR (default .cluster)
#     addresses          NAME URL, one process a line, in start order
#     pids/NAME.pid      logs/NAME.log (stdout and stderr; the previous run's in NAME.log.1)
#     data/NAME/         the process's data directory
#     kafka/             the broker's state (ALLIANCE_KAFKA_DIR, unless set)
#
# Environment: CARGO_TARGET_DIR (where the release binaries are; default target),
# ALLIANCE_BIN_DIR (the binaries' directory itself, instead), ALLIANCE_CLUSTER_DIR,
# ALLIANCE_CLUSTER_START_TIMEOUT (seconds a process may take to listen, default 180),
# ALLIANCE_CLUSTER_STOP_TIMEOUT (seconds a process may take to stop after SIGTERM, default 30).
set -euo pipefail
cd "$(dirname "$0")/../.."

HERE=deploy/local
# listening_address
source scripts/lib/allianced.sh
CLUSTER=$(realpath -m "${ALLIANCE_CLUSTER_DIR:-.cluster}")
BIN=${ALLIANCE_BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
START_TIMEOUT=${ALLIANCE_CLUSTER_START_TIMEOUT:-180}
STOP_TIMEOUT=${ALLIANCE_CLUSTER_STOP_TIMEOUT:-30}
export ALLIANCE_KAFKA_DIR=${ALLIANCE_KAFKA_DIR:-$CLUSTER/kafka}
KAFKA=deploy/kafka/kafka.sh

# The processes, in start order, and their binaries.
NAMES=(allianced-1 allianced-2 projection-1 projection-2 simulation)
declare -A BINARY=(
  [allianced-1]=allianced
  [allianced-2]=allianced
  [projection-1]=alliance-projection
  [projection-2]=alliance-projection
  [simulation]=alliance-simulation
)

# shellcheck source=deploy/local/cluster.env
source "$HERE/cluster.env"
TOKEN=$ALLIANCE_CLUSTER_TOKEN
# Started in a session of their own: a Ctrl-C in the terminal that ran `up` stops none of them.
launcher=()
command -v setsid >/dev/null 2>&1 && launcher=(setsid)

# Set once `up` has succeeded.
UP=0

say() { printf 'cluster.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# The pid recorded for NAME if that process is still running that binary.
running_pid() {
  local name=$1 pid
  [[ -f $CLUSTER/pids/$name.pid ]] || return 1
  pid=$(<"$CLUSTER/pids/$name.pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ $(ps -p "$pid" -o args= 2>/dev/null) == *"/${BINARY[$name]}"* ]] || return 1
  printf '%s\n' "$pid"
}

# The URL recorded for NAME.
address_of() {
  [[ -f $CLUSTER/addresses ]] || return 1
  awk -v name="$1" '$1 == name { print $2; found = 1 } END { exit !found }' "$CLUSTER/addresses"
}

# Starts NAME and waits for the line of its stdout saying where it listens (read through a
# FIFO; the rest of its stdout is then drained into its log, so later lines never block it).
start() {
  local name=$1 kafka=$2 commands=$3
  local binary="$BIN/${BINARY[$name]}"
  local log="$CLUSTER/logs/$name.log" fifo="$CLUSTER/run/$name.stdout" data="$CLUSTER/data/$name"
  [[ -x $binary ]] || die "$binary not found: build it first (make up does), or set CARGO_TARGET_DIR"
  mkdir -p "$data"
  # The previous run's log is kept beside it.
  if [[ -f $log ]]; then mv -f "$log" "$log.1"; fi
  printf '===== %s cluster.sh up: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$name" >"$log"
  rm -f "$fifo"
  mkfifo "$fifo"
  (
    KAFKA_BOOTSTRAP=$kafka DATA_DIR=$data COMMANDS=$commands
    set -a
    # shellcheck source=/dev/null
    source "$HERE/cluster.env"
    # shellcheck source=/dev/null
    source "$HERE/$name.env"
    set +a
    exec "${launcher[@]}" "$binary"
  ) </dev/null >"$fifo" 2>>"$log" &
  local pid=$!
  printf '%s\n' "$pid" >"$CLUSTER/pids/$name.pid"
  exec 3<"$fifo"
  rm -f "$fifo"
  local line address='' deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)) && IFS= read -r -t $((deadline - SECONDS)) line <&3; do
    printf '%s\n' "$line" >>"$log"
    address=$(listening_address "$line") && break
  done
  if [[ -z $address ]]; then
    exec 3<&-
    say "$name (pid $pid) did not say where it listens within ${START_TIMEOUT}s; the end of $log:"
    tail -n 30 "$log" >&2 || true
    return 1
  fi
  "${launcher[@]}" cat <&3 >>"$log" 2>&1 &
  exec 3<&-
  printf '%s http://%s\n' "$name" "$address" >>"$CLUSTER/addresses"
  say "$name (pid $pid) listening on $address"
}

# Stops NAME: SIGTERM, then waits for it to exit (SIGKILL after STOP_TIMEOUT seconds).
stop() {
  local name=$1 pid
  if pid=$(running_pid "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    if timeout "$STOP_TIMEOUT" tail --pid="$pid" -f /dev/null; then
      say "$name (pid $pid) stopped"
    else
      say "$name (pid $pid) did not stop within ${STOP_TIMEOUT}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      timeout 10 tail --pid="$pid" -f /dev/null || true
    fi
  fi
  rm -f "$CLUSTER/pids/$name.pid"
}

# The --server flags of every process started.
servers() {
  awk '{ print "--server"; print $2 }' "$CLUSTER/addresses"
}

cmd_up() {
  local name
  for name in "${NAMES[@]}"; do
    if running_pid "$name" >/dev/null; then
      die "the cluster is already up ($name is running): deploy/local/cluster.sh status, or down"
    fi
  done
  [[ -x $BIN/alliancectl ]] || die "$BIN/alliancectl not found: build it first (make up does), or set CARGO_TARGET_DIR"
  mkdir -p "$CLUSTER/pids" "$CLUSTER/logs" "$CLUSTER/data" "$CLUSTER/run"
  # Nothing of the cluster belongs in the repository.
  [[ -f $CLUSTER/.gitignore ]] || printf '*\n' >"$CLUSTER/.gitignore"
  rm -f "$CLUSTER/addresses"
  touch "$CLUSTER/addresses"
  # On any failure: stop what was started (the logs stay).
  trap 'if ((!UP)); then say "up failed; stopping what was started"; cmd_down || true; fi' EXIT

  local bootstrap
  bootstrap=$("$KAFKA" up | tail -n 1 | awk '{ print $NF }')
  [[ $bootstrap == *:* ]] || die "the broker did not report its address"
  say "Kafka broker at $bootstrap (state in $ALLIANCE_KAFKA_DIR)"

  start allianced-1 "$bootstrap" ""
  local commands
  commands=$(address_of allianced-1)
  for name in "${NAMES[@]:1}"; do
    start "$name" "$bootstrap" "$commands"
  done

  # Every process healthy: each service it serves SERVING.
  local -a all
  mapfile -t all < <(servers)
  "$BIN/alliancectl" --token "$TOKEN" --timeout 30 status "${all[@]}"

  # Every read model holds the reference plan as allianced-1 wrote it: a read at that version
  # on each server with read models, which waits (read your writes) until it is there.
  local plan version
  plan=$(sed -n 's/^ *"plan_id": *"\([^"]*\)".*/\1/p' deploy/reference-plan.json | head -n 1)
  version=$("$BIN/alliancectl" --server "$commands" --token "$TOKEN" plan list |
    awk -v plan="$plan" '$1 == plan { print $2 }')
  [[ $version =~ ^[0-9]+$ ]] || die "allianced-1 does not list the reference plan $plan"
  for name in allianced-2 projection-1 projection-2; do
    "$BIN/alliancectl" --server "$(address_of "$name")" --token "$TOKEN" --timeout 60 \
      decisions --plan "$plan" --min-version "$version" --status adopted >/dev/null
  done
  say "every read model holds the reference plan at version $version"
  UP=1
  say "up: addresses in $CLUSTER/addresses, logs in $CLUSTER/logs"
  cat "$CLUSTER/addresses"
}

cmd_status() {
  local name pid alive url rc=0
  "$KAFKA" status || rc=$?
  printf '%-13s %-8s %-6s %s\n' NAME PID ALIVE ADDRESS
  for name in "${NAMES[@]}"; do
    pid=$(cat "$CLUSTER/pids/$name.pid" 2>/dev/null || echo -)
    if running_pid "$name" >/dev/null; then alive=yes; else alive=no; rc=5; fi
    url=$(address_of "$name" 2>/dev/null || echo -)
    printf '%-13s %-8s %-6s %s\n' "$name" "$pid" "$alive" "$url"
  done
  if [[ ! -s $CLUSTER/addresses ]]; then
    say "no process has started (deploy/local/cluster.sh up)"
    return 5
  fi
  local -a all
  mapfile -t all < <(servers)
  echo
  "$BIN/alliancectl" --token "$TOKEN" --timeout 10 status "${all[@]}" || rc=$?
  return "$rc"
}

cmd_down() {
  local keep=0 i
  while (($#)); do
    case $1 in
      --keep) keep=1 ;;
      *) die "down: unknown option $1" ;;
    esac
    shift
  done
  # The simulation records through allianced-1, the replicas only read: stop in reverse order.
  for ((i = ${#NAMES[@]} - 1; i >= 0; i--)); do
    stop "${NAMES[i]}"
  done
  if ((keep)); then
    "$KAFKA" down --keep >&2
  else
    "$KAFKA" down >&2
    # The processes' snapshots and run stores describe the topic just deleted.
    rm -rf "$CLUSTER/data"
  fi
  rm -rf "$CLUSTER/run" "$CLUSTER/pids"
  rm -f "$CLUSTER/addresses"
  say "down; the logs are kept in $CLUSTER/logs"
}

case ${1:-} in
  up) cmd_up ;;
  status) cmd_status ;;
  down)
    shift
    cmd_down "$@"
    ;;
  *)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
