#!/usr/bin/env bash
set -euo pipefail

# Local single-node Apache Kafka 4.x (KRaft combined broker+controller, no
# ZooKeeper, no Docker) for development and integration tests.
#
# Usage:
#   deploy/kafka/kafka.sh up [--clean]            start (no-op if already running); prints
#                                                 "kafka: broker ready at 127.0.0.1:PORT".
#                                                 Starts with empty data unless the last
#                                                 down was --keep (--clean: always empty)
#   deploy/kafka/kafka.sh down [--keep]           stop; deletes the data unless --keep
#   deploy/kafka/kafka.sh status                  running/stopped + bootstrap; exit 0 iff running
#   deploy/kafka/kafka.sh create-topic NAME PARTITIONS
#   deploy/kafka/kafka.sh describe-topic NAME
#   deploy/kafka/kafka.sh add-partitions NAME COUNT
#                                                 grow the topic to COUNT partitions with the
#                                                 broker's own tool (kafka-topics.sh --alter)
#   deploy/kafka/kafka.sh env                     prints "export ALLIANCE_KAFKA_BOOTSTRAP=..." and
#                                                 "export ALLIANCE_KAFKA_SECURE_CLIENT=FILE"
#   deploy/kafka/kafka.sh acl ARGS...             runs the broker's ACL tool (kafka-acls.sh) on it
#   deploy/kafka/kafka.sh cluster-id [N]          prints N (1) new cluster ids, as `up` formats
#                                                 storage with (none starts with '-')
#
# Besides the plaintext listener, the broker listens with SASL_SSL (PLAIN over TLS) on a
# second port. Its CA, the broker's certificate (for 127.0.0.1 and localhost) and the
# password of the user "alliance" are made once with keytool into $ALLIANCE_KAFKA_DIR/tls;
# the librdkafka settings of a client of that listener are written to
# $ALLIANCE_KAFKA_DIR/secure-client.properties (KEY=VALUE lines). The broker authorizes with
# ACLs (KRaft StandardAuthorizer): "alliance" and the plaintext and controller listeners'
# ANONYMOUS are super users, so they may do anything; a second SASL user, "replica" (its
# password also in tls/, its client settings in replica-client.properties), may do only what
# ACLs grant it, none by default: the principal of a replica, for tests of the ACLs that
# docs/configuration.md gives replicas.
#
# Environment (all optional):
#   ALLIANCE_CACHE_DIR        jar cache root           (default $HOME/.cache/alliance)
#                             jars go to $ALLIANCE_CACHE_DIR/kafka-<version>/libs
#   ALLIANCE_KAFKA_DIR        broker state dir         (default $HOME/.cache/alliance/kafka-run)
#                             holds config/, data/, logs/broker.log, kafka.pid,
#                             bootstrap ("127.0.0.1:PORT", only while running and
#                             ready), env ("export ALLIANCE_KAFKA_BOOTSTRAP=..."),
#                             ports, keep-data, tls/, secure-client.properties and
#                             replica-client.properties
#   ALLIANCE_KAFKA_VERSION    Kafka version            (default 4.1.1)
#   ALLIANCE_KAFKA_BOOTSTRAP  used by create-topic/describe-topic instead of the
#                             bootstrap file (to target another broker)
#   ALLIANCE_JAVA             java binary (must be >= 17; default: JAVA_HOME, PATH, /usr/lib/jvm)
#   ALLIANCE_MVN              maven binary             (default mvn)
#   ALLIANCE_KAFKA_HEAP_OPTS  broker heap              (default "-Xmx512m -Xms256m")
#   ALLIANCE_KAFKA_START_TIMEOUT  seconds to wait for readiness (default 60)
#   ALLIANCE_KAFKA_STOP_TIMEOUT   seconds to wait after SIGTERM  (default 30)
#
# All progress goes to stderr; stdout only carries the result lines.

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

KAFKA_VERSION="${ALLIANCE_KAFKA_VERSION:-4.1.1}"
CACHE_ROOT="${ALLIANCE_CACHE_DIR:-$HOME/.cache/alliance}"
KAFKA_HOME="$CACHE_ROOT/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"
LIBS_MARKER="$LIBS/.alliance-complete"

STATE="${ALLIANCE_KAFKA_DIR:-$HOME/.cache/alliance/kafka-run}"
CONF_DIR="$STATE/config"
DATA_DIR="$STATE/data"
LOG_DIR="$STATE/logs"
LOG_FILE="$LOG_DIR/broker.log"
PID_FILE="$STATE/kafka.pid"
BOOTSTRAP_FILE="$STATE/bootstrap"
ENV_FILE="$STATE/env"
PORTS_FILE="$STATE/ports"
KEEP_MARKER="$STATE/keep-data"
SERVER_CONF="$CONF_DIR/server.properties"
PROBE_CONF="$CONF_DIR/probe-admin.properties"
TLS_DIR="$STATE/tls"
SECURE_CLIENT="$STATE/secure-client.properties"
REPLICA_CLIENT="$STATE/replica-client.properties"
ADMIN_CONF="$CONF_DIR/admin.properties"

MVN="${ALLIANCE_MVN:-mvn}"
HEAP_OPTS="${ALLIANCE_KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
START_TIMEOUT="${ALLIANCE_KAFKA_START_TIMEOUT:-60}"
STOP_TIMEOUT="${ALLIANCE_KAFKA_STOP_TIMEOUT:-30}"

JAVA=""

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { printf 'kafka.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '4,53p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

now() { date +%s; }

# ---------------------------------------------------------------- java / jars

java_major() {
  local v
  v="$("$1" -version 2>&1 | awk -F'"' '/version/ { print $2; exit }')" || return 1
  [[ -n "$v" ]] || return 1
  v="${v#1.}"            # 1.8.0 -> 8.0
  v="${v%%[.+-]*}"       # 17.0.15 -> 17, 25-ea -> 25
  [[ "$v" =~ ^[0-9]+$ ]] || return 1
  printf '%s\n' "$v"
}

find_java() {
  [[ -n "$JAVA" ]] && return 0
  local candidates=() c m
  [[ -n "${ALLIANCE_JAVA:-}" ]] && candidates+=("$ALLIANCE_JAVA")
  [[ -n "${JAVA_HOME:-}" ]] && candidates+=("$JAVA_HOME/bin/java")
  c="$(command -v java 2>/dev/null || true)"
  [[ -n "$c" ]] && candidates+=("$c")
  for c in /usr/lib/jvm/*/bin/java; do [[ -x "$c" ]] && candidates+=("$c"); done
  for c in "${candidates[@]}"; do
    [[ -x "$c" ]] || continue
    m="$(java_major "$c" 2>/dev/null)" || continue
    if (( m >= 17 )); then JAVA="$c"; return 0; fi
    log "skipping $c (Java $m; Kafka 4.x brokers need Java >= 17)"
  done
  die "no Java >= 17 found (set ALLIANCE_JAVA or JAVA_HOME)"
}

pom_digest() {
  { cksum < "$SCRIPT_DIR/pom.xml"; printf 'kafka.version=%s\n' "$KAFKA_VERSION"; } | cksum | awk '{print $1}'
}

libs_complete() {
  [[ -f "$LIBS_MARKER" ]] && [[ "$(cat "$LIBS_MARKER" 2>/dev/null)" == "$(pom_digest)" ]] \
    && compgen -G "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null \
    && compgen -G "$LIBS/kafka-tools-$KAFKA_VERSION.jar" >/dev/null
}

ensure_libs() {
  libs_complete && return 0
  mkdir -p "$KAFKA_HOME"
  exec 8>"$KAFKA_HOME/.fetch.lock"
  flock -w 600 8 || die "timed out waiting for $KAFKA_HOME/.fetch.lock"
  if libs_complete; then exec 8>&-; return 0; fi

  command -v "$MVN" >/dev/null 2>&1 || die "maven ('$MVN') not found; needed once to fetch Kafka $KAFKA_VERSION"
  local tmp="$KAFKA_HOME/libs.partial.$$" mvnlog="$KAFKA_HOME/mvn.log" t0
  rm -rf "$tmp"
  t0="$(now)"
  local mvn_args=(-B -q -f "$SCRIPT_DIR/pom.xml" "-Dkafka.version=$KAFKA_VERSION"
                  dependency:copy-dependencies "-DoutputDirectory=$tmp")
  # Try offline first (works when ~/.m2 is already warm), then online.
  if "$MVN" -o "${mvn_args[@]}" >"$mvnlog" 2>&1; then
    log "copied Kafka $KAFKA_VERSION jars from the local Maven repository"
  else
    rm -rf "$tmp"
    log "fetching Apache Kafka $KAFKA_VERSION from Maven Central (one-time) ..."
    if ! "$MVN" "${mvn_args[@]}" >"$mvnlog" 2>&1; then
      tail -n 40 "$mvnlog" >&2 || true
      rm -rf "$tmp"
      die "maven failed to fetch Kafka $KAFKA_VERSION (full log: $mvnlog)"
    fi
  fi
  [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "maven finished but $tmp/kafka_2.13-$KAFKA_VERSION.jar is missing"
  pom_digest > "$tmp/.alliance-complete"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  log "Kafka $KAFKA_VERSION jars ready in $LIBS ($(( $(now) - t0 ))s)"
  exec 8>&-
}

# Run a Kafka CLI class with the cached classpath. Quiet logging on stderr.
run_tool() {
  local main="$1"; shift
  "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
    -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$SCRIPT_DIR/log4j2-tools.properties" \
    -cp "$LIBS/*" "$main" "$@"
}

# ---------------------------------------------------------------- processes / ports

read_pid() {
  local p
  [[ -f "$PID_FILE" ]] || return 1
  p="$(tr -dc '0-9' < "$PID_FILE")"
  [[ -n "$p" ]] || return 1
  printf '%s\n' "$p"
}

# Is PID alive and our broker (java ... kafka.Kafka <our server.properties>)?
is_our_broker() {
  local pid="$1" args
  kill -0 "$pid" 2>/dev/null || return 1
  args="$(ps -p "$pid" -o args= 2>/dev/null)" || return 1
  [[ "$args" == *kafka.Kafka* && "$args" == *"$SERVER_CONF"* ]]
}

running_pid() {
  local pid
  pid="$(read_pid)" || return 1
  is_our_broker "$pid" || return 1
  printf '%s\n' "$pid"
}

tcp_open() {
  # shellcheck disable=SC2016  # $1 is expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

port_free() {
  python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket()
# Like Kafka's own listener (SO_REUSEADDR): TIME_WAIT leftovers don't count as busy.
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

pick_ports() {
  if command -v python3 >/dev/null 2>&1; then
    python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks:
    s.close()
PY
  else
    # Fallback without python: random high ports that nobody answers on.
    local p ports=()
    while (( ${#ports[@]} < 3 )); do
      p=$(( 20000 + RANDOM % 40000 ))
      [[ " ${ports[*]:-} " == *" $p "* ]] && continue
      tcp_open "$p" || ports+=("$p")
    done
    echo "${ports[@]}"
  fi
}

# A new cluster id: a random UUID in URL-safe base64, as Kafka writes them, and, as Kafka's own
# generator does, never one starting with '-', which the storage tool would take for an option
# (one id in 64 did, and formatting failed).
new_cluster_id() {
  new_cluster_ids 1
}

# N new cluster ids, one per line.
new_cluster_ids() {
  local count="$1" i
  if command -v python3 >/dev/null 2>&1; then
    python3 -c '
import base64, sys, uuid
for _ in range(int(sys.argv[1])):
    cid = "-"
    while cid.startswith("-"):
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    print(cid)' "$count"
  else
    for ((i = 0; i < count; i++)); do
      run_tool kafka.tools.StorageTool random-uuid
    done
  fi
}

cmd_cluster_id() {
  local count="${1:-1}"
  [[ "$count" =~ ^[0-9]+$ ]] || die "cluster-id takes a count, not '$count'"
  new_cluster_ids "$count"
}

broker_log_tail() {
  if [[ -f "$LOG_FILE" ]]; then
    echo "----- last 40 lines of $LOG_FILE -----" >&2
    tail -n 40 "$LOG_FILE" >&2 || true
    echo "-----" >&2
  fi
}

# Readiness: the process is alive, the port accepts TCP, and the broker
# answers a metadata request (TopicCommand --list).
probe_metadata() {
  timeout 20 "$JAVA" -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
    "-Dlog4j2.configurationFile=$SCRIPT_DIR/log4j2-tools.properties" \
    -cp "$LIBS/*" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "$1" --command-config "$PROBE_CONF" --list >/dev/null 2>&1
}

wait_ready() {
  local pid="$1" port="$2" deadline
  deadline=$(( $(now) + START_TIMEOUT ))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      broker_log_tail
      return 2
    fi
    if tcp_open "$port"; then
      if probe_metadata "127.0.0.1:$port"; then
        return 0
      fi
    fi
    if (( $(now) >= deadline )); then
      broker_log_tail
      return 1
    fi
    sleep 0.3
  done
}

# ---------------------------------------------------------------- config

# A random secret of letters and digits.
secret() { LC_ALL=C tr -dc 'A-Za-z0-9' < /dev/urandom | head -c 24 || true; }

# The TLS material of the SASL_SSL listener, made once: a CA, the broker's key and certificate
# signed by it (PKCS#12 keystore), the CA as PEM for clients, the SASL user's password.
ensure_tls() {
  [[ -f "$TLS_DIR/.complete" ]] && return 0
  local keytool tmp="$TLS_DIR.partial.$$" pass
  keytool="$(dirname "$JAVA")/keytool"
  [[ -x "$keytool" ]] || keytool="$(command -v keytool)" || die "keytool (of the JDK) not found"
  rm -rf "$tmp"; mkdir -p "$tmp" "$LOG_DIR"
  pass="$(secret)"
  log "making the TLS material of the SASL_SSL listener in $TLS_DIR (one-time)"
  {
    "$keytool" -genkeypair -alias ca -keyalg EC -groupname secp256r1 -validity 3650 \
      -dname "CN=alliance development Kafka CA" -ext bc:c \
      -keystore "$tmp/ca.p12" -storetype PKCS12 -storepass "$pass"
    "$keytool" -exportcert -rfc -alias ca -keystore "$tmp/ca.p12" -storepass "$pass" -file "$tmp/ca.pem"
    "$keytool" -genkeypair -alias broker -keyalg EC -groupname secp256r1 -validity 3650 \
      -dname "CN=localhost" -keystore "$tmp/broker.p12" -storetype PKCS12 -storepass "$pass"
    "$keytool" -certreq -alias broker -keystore "$tmp/broker.p12" -storepass "$pass" -file "$tmp/broker.csr"
    "$keytool" -gencert -rfc -alias ca -keystore "$tmp/ca.p12" -storepass "$pass" -validity 3650 \
      -ext "SAN=dns:localhost,ip:127.0.0.1" -ext "EKU=serverAuth" \
      -infile "$tmp/broker.csr" -outfile "$tmp/broker.pem"
    "$keytool" -importcert -noprompt -alias ca -file "$tmp/ca.pem" \
      -keystore "$tmp/broker.p12" -storepass "$pass"
    "$keytool" -importcert -noprompt -alias broker -file "$tmp/broker.pem" \
      -keystore "$tmp/broker.p12" -storepass "$pass"
  } >>"$LOG_FILE" 2>&1 || die "keytool failed (see $LOG_FILE)"
  rm -f "$tmp/broker.csr" "$tmp/ca.p12"
  printf '%s\n' "$pass" > "$tmp/keystore-password"
  secret > "$tmp/sasl-password"
  chmod 600 "$tmp"/*
  : > "$tmp/.complete"
  rm -rf "$TLS_DIR"
  mv "$tmp" "$TLS_DIR"
}

# The password of the SASL user "replica", made once (also in a state dir made before it existed).
ensure_replica_password() {
  [[ -s "$TLS_DIR/replica-password" ]] && return 0
  secret > "$TLS_DIR/replica-password.tmp"
  chmod 600 "$TLS_DIR/replica-password.tmp"
  mv "$TLS_DIR/replica-password.tmp" "$TLS_DIR/replica-password"
}

# librdkafka settings of a client of the SASL_SSL listener on port $1 as user $2 with password $3.
write_client() {
  local file="$1" sport="$2" user="$3" pass="$4"
  printf '%s\n' "bootstrap.servers=127.0.0.1:$sport" \
    "security.protocol=SASL_SSL" \
    "sasl.mechanism=PLAIN" \
    "sasl.username=$user" \
    "sasl.password=$pass" \
    "ssl.ca.location=$TLS_DIR/ca.pem" > "$file.tmp"
  chmod 600 "$file.tmp"
  mv "$file.tmp" "$file"
}

render_config() {
  local bport="$1" cport="$2" sport="$3" keystore_pass sasl_pass replica_pass
  mkdir -p "$CONF_DIR" "$DATA_DIR" "$LOG_DIR"
  ensure_tls
  ensure_replica_password
  keystore_pass="$(head -n 1 "$TLS_DIR/keystore-password")"
  sasl_pass="$(head -n 1 "$TLS_DIR/sasl-password")"
  replica_pass="$(head -n 1 "$TLS_DIR/replica-password")"
  sed -e "s|@BROKER_PORT@|$bport|g" \
      -e "s|@CONTROLLER_PORT@|$cport|g" \
      -e "s|@SECURE_PORT@|$sport|g" \
      -e "s|@DATA_DIR@|$DATA_DIR|g" \
      -e "s|@KEYSTORE@|$TLS_DIR/broker.p12|g" \
      -e "s|@KEYSTORE_PASSWORD@|$keystore_pass|g" \
      -e "s|@SASL_PASSWORD@|$sasl_pass|g" \
      -e "s|@REPLICA_PASSWORD@|$replica_pass|g" \
      "$SCRIPT_DIR/server.properties.template" > "$SERVER_CONF.tmp"
  chmod 600 "$SERVER_CONF.tmp"
  mv "$SERVER_CONF.tmp" "$SERVER_CONF"
  write_client "$SECURE_CLIENT" "$sport" alliance "$sasl_pass"
  write_client "$REPLICA_CLIENT" "$sport" replica "$replica_pass"
  cat > "$PROBE_CONF" <<'EOF'
# Admin client settings for the readiness probe: fail fast.
request.timeout.ms=3000
default.api.timeout.ms=5000
socket.connection.setup.timeout.ms=1000
socket.connection.setup.timeout.max.ms=2000
reconnect.backoff.max.ms=300
retry.backoff.max.ms=300
EOF
  cat > "$ADMIN_CONF" <<'EOF'
# Admin client settings for kafka.sh create-topic / describe-topic.
request.timeout.ms=15000
default.api.timeout.ms=30000
socket.connection.setup.timeout.ms=2000
socket.connection.setup.timeout.max.ms=5000
EOF
  printf 'BROKER_PORT=%s\nCONTROLLER_PORT=%s\nSECURE_PORT=%s\n' "$bport" "$cport" "$sport" > "$PORTS_FILE"
}

format_storage() {
  if [[ -f "$DATA_DIR/meta.properties" ]]; then
    log "reusing existing data in $DATA_DIR"
    return 0
  fi
  local cid
  cid="$(new_cluster_id)"
  log "formatting storage in $DATA_DIR (cluster id $cid)"
  if ! run_tool kafka.tools.StorageTool format -t "$cid" -c "$SERVER_CONF" --ignore-formatted \
        >>"$LOG_FILE" 2>&1; then
    broker_log_tail
    die "kafka storage format failed"
  fi
}

write_bootstrap() {
  local addr="127.0.0.1:$1"
  printf '%s\n' "$addr" > "$BOOTSTRAP_FILE.tmp"
  mv "$BOOTSTRAP_FILE.tmp" "$BOOTSTRAP_FILE"
  { printf 'export ALLIANCE_KAFKA_BOOTSTRAP=%s\n' "$addr"
    printf 'export ALLIANCE_KAFKA_SECURE_CLIENT=%s\n' "$SECURE_CLIENT"; } > "$ENV_FILE"
}

read_bootstrap() {
  [[ -f "$BOOTSTRAP_FILE" ]] || return 1
  local b
  b="$(head -n 1 "$BOOTSTRAP_FILE")"
  [[ -n "$b" ]] || return 1
  printf '%s\n' "$b"
}

# ---------------------------------------------------------------- commands

lock_state() {
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  flock -w 180 9 || die "timed out waiting for $STATE/.lock (another kafka.sh running?)"
}

start_broker() {
  local bport="$1" cport="$2"
  local -a cmd
  # shellcheck disable=SC2206  # HEAP_OPTS is intentionally word-split
  cmd=("$JAVA" $HEAP_OPTS
       -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
       -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
       "-Dkafka.logs.dir=$LOG_DIR"
       "-Dlog4j2.configurationFile=$SCRIPT_DIR/log4j2-broker.properties"
       -cp "$LIBS/*" kafka.Kafka "$SERVER_CONF")
  {
    printf '\n===== %s kafka.sh up: Kafka %s, java %s, broker 127.0.0.1:%s, controller 127.0.0.1:%s =====\n' \
      "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$KAFKA_VERSION" "$JAVA" "$bport" "$cport"
    printf 'command:'
    printf ' %q' "${cmd[@]}"
    printf '\n'
  } >>"$LOG_FILE"
  local launcher=()
  command -v setsid >/dev/null 2>&1 && launcher=(setsid)
  # New session (survives Ctrl-C / process-group kills of the caller), no
  # inherited lock fds, stdout+stderr appended to the broker log.
  "${launcher[@]}" nohup "${cmd[@]}" </dev/null >>"$LOG_FILE" 2>&1 8>&- 9>&- &
  local pid=$!
  printf '%s\n' "$pid" > "$PID_FILE"
  printf '%s\n' "$pid"
}

# flag COMMAND FLAG ARGS...: 1 if ARGS hold FLAG, 0 if they are empty; anything else is an error.
flag() {
  local command="$1" flag="$2" arg given=0
  shift 2
  for arg in "$@"; do
    [[ "$arg" == "$flag" ]] || die "$command: unknown option $arg"
    given=1
  done
  printf '%s\n' "$given"
}

cmd_up() {
  local clean
  clean="$(flag up --clean "$@")"
  lock_state
  find_java

  local pid port b
  if pid="$(running_pid)"; then
    if b="$(read_bootstrap)" || { [[ -f "$PORTS_FILE" ]] && b="127.0.0.1:$(sed -n 's/^BROKER_PORT=//p' "$PORTS_FILE")"; }; then
      port="${b##*:}"
      ensure_libs
      if wait_ready "$pid" "$port"; then
        write_bootstrap "$port"
        log "already running (pid $pid)"
        echo "kafka: broker ready at $b"
        return 0
      fi
    fi
    die "a broker is running (pid $pid) but does not answer; run '$0 down' first"
  fi

  # Not running: clean up stale state.
  rm -f "$PID_FILE" "$BOOTSTRAP_FILE" "$ENV_FILE"
  # Every up starts with empty data unless the last down was 'down --keep'
  # (leftovers of a crashed broker are discarded too: besides being stale they
  # would delay startup by the broker session timeout).
  if (( clean )); then
    rm -rf "$DATA_DIR" "$KEEP_MARKER"
  elif [[ -d "$DATA_DIR" && ! -f "$KEEP_MARKER" ]]; then
    log "discarding leftover data in $DATA_DIR (use 'down --keep' to preserve data across restarts)"
    rm -rf "$DATA_DIR"
  fi

  ensure_libs

  mkdir -p "$LOG_DIR"
  if [[ -f "$LOG_FILE" ]]; then mv -f "$LOG_FILE" "$LOG_FILE.1"; fi

  local t0 attempt bport cport sport rc
  t0="$(now)"
  for attempt in 1 2 3; do
    bport="" cport="" sport=""
    # Keep the previous ports when data is kept (clients see the same address).
    if [[ -f "$DATA_DIR/meta.properties" && -f "$PORTS_FILE" && $attempt == 1 ]]; then
      bport="$(sed -n 's/^BROKER_PORT=//p' "$PORTS_FILE")"
      cport="$(sed -n 's/^CONTROLLER_PORT=//p' "$PORTS_FILE")"
      sport="$(sed -n 's/^SECURE_PORT=//p' "$PORTS_FILE")"
      if ! { [[ -n "$bport" && -n "$cport" && -n "$sport" ]] && port_free "$bport" \
               && port_free "$cport" && port_free "$sport"; }; then
        bport="" cport="" sport=""
      fi
    fi
    if [[ -z "$bport" ]]; then
      read -r bport cport sport < <(pick_ports)
    fi
    [[ "$bport" =~ ^[0-9]+$ && "$cport" =~ ^[0-9]+$ && "$sport" =~ ^[0-9]+$ ]] \
      || die "could not pick free ports"

    render_config "$bport" "$cport" "$sport"
    format_storage
    log "starting broker on 127.0.0.1:$bport (SASL_SSL 127.0.0.1:$sport, controller 127.0.0.1:$cport), log: $LOG_FILE"
    pid="$(start_broker "$bport" "$cport")"

    rc=0
    wait_ready "$pid" "$bport" || rc=$?
    if (( rc == 0 )); then
      write_bootstrap "$bport"
      log "ready after $(( $(now) - t0 ))s (pid $pid)"
      echo "kafka: broker ready at 127.0.0.1:$bport"
      return 0
    fi
    if (( rc == 2 )) && grep -qE 'BindException|Address already in use' "$LOG_FILE"; then
      log "port clash (attempt $attempt), retrying with new ports"
      rm -f "$PID_FILE"
      continue
    fi
    break
  done

  if (( rc == 2 )); then
    rm -f "$PID_FILE"
    die "broker process $pid exited during startup (see $LOG_FILE)"
  fi
  log "broker did not become ready within ${START_TIMEOUT}s; stopping it"
  stop_pid "$pid"
  rm -f "$PID_FILE"
  die "broker not ready after ${START_TIMEOUT}s (see $LOG_FILE)"
}

stop_pid() {
  local pid="$1" deadline
  kill -TERM "$pid" 2>/dev/null || return 0
  deadline=$(( $(now) + STOP_TIMEOUT ))
  while kill -0 "$pid" 2>/dev/null; do
    if (( $(now) >= deadline )); then
      log "broker (pid $pid) did not stop within ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      local _
      for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      break
    fi
    sleep 0.2
  done
}

cmd_down() {
  local keep
  keep="$(flag down --keep "$@")"
  lock_state

  local pid="" found=0
  if pid="$(running_pid)"; then
    found=1
  else
    # pid file lost? look for a broker started with *our* config file.
    pid="$(pgrep -f -- "kafka.Kafka $SERVER_CONF" 2>/dev/null | head -n 1 || true)"
    if [[ -n "$pid" ]] && is_our_broker "$pid"; then found=1; fi
  fi

  if (( found )); then
    log "stopping broker (pid $pid)"
    stop_pid "$pid"
  fi
  rm -f "$PID_FILE" "$BOOTSTRAP_FILE" "$ENV_FILE"
  if (( keep )); then
    if [[ -f "$DATA_DIR/meta.properties" ]]; then
      : > "$KEEP_MARKER"
      log "keeping data in $DATA_DIR (next 'up' reuses it)"
    fi
  else
    rm -rf "$DATA_DIR" "$KEEP_MARKER"
  fi
  if (( found )); then echo "kafka: stopped"; else echo "kafka: not running"; fi
}

cmd_status() {
  local pid b
  if pid="$(running_pid)"; then
    b="$(read_bootstrap || true)"
    if [[ -n "$b" ]] && tcp_open "${b##*:}"; then
      echo "kafka: running (pid $pid) at $b"
      return 0
    fi
    echo "kafka: starting or unhealthy (pid $pid)${b:+ at $b}"
    return 1
  fi
  echo "kafka: stopped"
  return 3
}

target_bootstrap() {
  if [[ -n "${ALLIANCE_KAFKA_BOOTSTRAP:-}" ]]; then
    printf '%s\n' "$ALLIANCE_KAFKA_BOOTSTRAP"
    return 0
  fi
  if running_pid >/dev/null && read_bootstrap; then
    return 0
  fi
  die "no local broker running (state dir $STATE); run '$0 up' first or set ALLIANCE_KAFKA_BOOTSTRAP"
}

admin_conf_args() {
  if [[ -f "$ADMIN_CONF" ]]; then printf '%s\n' --command-config "$ADMIN_CONF"; fi
}

# admin_tool CLASS ARGS...: the Kafka admin tool CLASS run against the broker (this script's, or
# ALLIANCE_KAFKA_BOOTSTRAP's) with the admin client's settings, if any.
admin_tool() {
  local main="$1" b
  shift
  find_java
  ensure_libs
  b="$(target_bootstrap)"
  local -a extra=()
  mapfile -t extra < <(admin_conf_args)
  run_tool "$main" --bootstrap-server "$b" "${extra[@]}" "$@"
}

cmd_create_topic() {
  (( $# == 2 )) || die "usage: $0 create-topic NAME PARTITIONS"
  local name="$1" parts="$2" b
  [[ "$name" =~ ^[A-Za-z0-9._-]{1,249}$ ]] || die "invalid topic name '$name'"
  [[ "$parts" =~ ^[1-9][0-9]*$ ]] || die "PARTITIONS must be a positive integer, got '$parts'"
  find_java
  ensure_libs
  b="$(target_bootstrap)"
  local -a extra=()
  mapfile -t extra < <(admin_conf_args)
  run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$b" "${extra[@]}" \
    --create --if-not-exists --topic "$name" \
    --partitions "$parts" --replication-factor 1 \
    --config retention.ms=-1 \
    --config retention.bytes=-1 \
    --config min.insync.replicas=1 \
    --config cleanup.policy=delete >&2

  # --if-not-exists is silent about an existing topic with another layout: check.
  local desc actual
  desc="$(run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$b" "${extra[@]}" \
            --describe --topic "$name")" || die "topic '$name' not describable after create"
  actual="$(printf '%s\n' "$desc" | sed -n 's/.*PartitionCount: *\([0-9]*\).*/\1/p' | head -n 1)"
  if [[ -n "$actual" && "$actual" != "$parts" ]]; then
    log "warning: topic '$name' already exists with $actual partitions (requested $parts)"
  fi
  echo "kafka: topic $name ready (${actual:-?} partitions) at $b"
}

cmd_describe_topic() {
  (( $# == 1 )) || die "usage: $0 describe-topic NAME"
  admin_tool org.apache.kafka.tools.TopicCommand --describe --topic "$1"
  admin_tool kafka.admin.ConfigCommand --describe --entity-type topics --entity-name "$1"
}

cmd_add_partitions() {
  (( $# == 2 )) || die "usage: $0 add-partitions NAME COUNT"
  # What kafka-topics.sh --alter runs.
  admin_tool org.apache.kafka.tools.TopicCommand --alter --topic "$1" --partitions "$2"
}

cmd_acl() {
  # What kafka-acls.sh runs; as ANONYMOUS on the plaintext listener, a super user.
  admin_tool org.apache.kafka.tools.AclCommand "$@"
}

cmd_env() {
  local b
  b="$(target_bootstrap)"
  printf 'export ALLIANCE_KAFKA_BOOTSTRAP=%s\n' "$b"
  if [[ -z "${ALLIANCE_KAFKA_BOOTSTRAP:-}" && -f "$SECURE_CLIENT" ]]; then
    printf 'export ALLIANCE_KAFKA_SECURE_CLIENT=%s\n' "$SECURE_CLIENT"
  fi
}

main() {
  local sub="${1:-}"
  (( $# )) && shift
  case "$sub" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status "$@" ;;
    create-topic) cmd_create_topic "$@" ;;
    describe-topic) cmd_describe_topic "$@" ;;
    add-partitions) cmd_add_partitions "$@" ;;
    acl) cmd_acl "$@" ;;
    env) cmd_env "$@" ;;
    cluster-id) cmd_cluster_id "$@" ;;
    -h|--help|help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
