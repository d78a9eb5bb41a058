#!/usr/bin/env bash
# gRPC load with ghz, a standard gRPC load tool (from the Go module proxy, cached under
# ~/.cache/alliance/tools): a command RPC and the posture query, each beside the same server's
# `grpc.health.v1` check (the floor of a unary call there), driven from the protos alone. RUNS
# alternating runs of each at CONCURRENCY concurrent calls, then the posture query from one
# client; the report gives medians and each RPC's ratio to the health check.
#
# Against the local cluster when `make up` is running (the addresses in
# ${ALLIANCE_CLUSTER_DIR:-.cluster}/addresses: the posture query goes to a projection replica,
# the command to an allianced instance); otherwise against a throwaway release `allianced` on the
# embedded log, whose resident memory is reported. Prints a Markdown section; with OUT=FILE it
# also replaces the section in FILE.
#
# Environment: CARGO (default cargo), GHZ_VERSION, DURATION (default 5s), CONCURRENCY (default
# 64), RUNS (default 3), OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
GHZ_VERSION=${GHZ_VERSION:-v0.120.0}
DURATION=${DURATION:-5s}
CONCURRENCY=${CONCURRENCY:-64}
RUNS=${RUNS:-3}
REFERENCE_PLAN=019a0000-0000-7000-8000-000000000001
source scripts/lib/go-tool.sh
ghz=$(go_tool ghz github.com/bojand/ghz/cmd/ghz "$GHZ_VERSION")

source scripts/lib/allianced.sh
tmp=$(mktemp -d)
trap 'stop_allianced; rm -rf "$tmp"' EXIT

# The standard health service's messages (grpc/health/v1/health.proto), for ghz to call it.
mkdir -p "$tmp/proto/grpc/health/v1"
cat >"$tmp/proto/grpc/health/v1/health.proto" <<'PROTO'
syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health { rpc Check(HealthCheckRequest) returns (HealthCheckResponse); }
PROTO

cluster_dir=${ALLIANCE_CLUSTER_DIR:-.cluster}
strip() { local a=${1#http://}; echo "${a%/}"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$server/status"; }
if [[ -f $cluster_dir/addresses ]]; then
  commands=$(strip "$(awk '$1 ~ /^allianced/ {print $2; exit}' "$cluster_dir/addresses")")
  queries=$(strip "$(awk '$1 ~ /projection/ {print $2; exit}' "$cluster_dir/addresses")")
  where="the local cluster (\`make up\`): commands to \`allianced\` at $commands, posture queries to an \`alliance-projection\` replica at $queries, all on Kafka"
else
  "$CARGO" build -q --release -p allianced
  start_allianced "$(cargo_target_dir)/release/allianced" "$tmp"
  rss_start=$(rss)
  commands=$address
  queries=$address
  where="a release \`allianced\` on the embedded log (SQLite, \`synchronous=FULL\`, default logging) on loopback"
fi

# The CPU time the throwaway server has used, in clock ticks (none against a cluster).
server_ticks() {
  if [[ -n ${server:-} ]]; then awk '{print $14 + $15}' "/proc/$server/stat"; else echo 0; fi
}

# run NAME PROTO TARGET TOKEN CALL DATA CONCURRENCY: one ghz run; its JSON report in
# $tmp/NAME.json, and in $tmp/NAME.cpu the CPU seconds the server and ghz used meanwhile (both
# share this machine's cores).
run() {
  local name=$1 proto=$2 target=$3 token=$4 call=$5 data=$6 concurrency=$7
  # LC_ALL=C: `time` writes its seconds with the locale's decimal separator.
  local before LC_ALL=C TIMEFORMAT='%3U %3S'
  before=$(server_ticks)
  if ! { time "$ghz" --insecure --proto "$proto" --import-paths "proto,$tmp/proto" \
    --call "$call" --metadata "{\"authorization\":\"Bearer $token\"}" \
    --data "$data" --concurrency "$concurrency" --duration "$DURATION" \
    --format json "$target" >"$tmp/$name.json"; } 2>"$tmp/$name.time"; then
    cat "$tmp/$name.time" >&2 # ghz's own error, before the trap removes it
    return 1
  fi
  echo "$(( $(server_ticks) - before )) $(getconf CLK_TCK) $(tail -1 "$tmp/$name.time")" >"$tmp/$name.cpu"
}

# A plan of its own for the commands, so the reference plan is left as it is.
plan=$(python3 -c 'import uuid; print(uuid.uuid4())')
"$ghz" --insecure --proto proto/alliance/v1/commands.proto --import-paths proto \
  --call alliance.v1.PlanCommands/CreatePlan \
  --metadata '{"authorization":"Bearer dev-alliance-approvers"}' -n 1 -c 1 \
  --data "{\"meta\":{\"command_id\":\"ghz-plan-$plan\",\"plan_id\":\"$plan\"},\"name\":\"ghz\",\"horizon_start\":{\"year\":2020,\"month\":1,\"day\":1},\"horizon_end\":{\"year\":2040,\"month\":12,\"day\":31}}" \
  "$commands" >/dev/null

health() { # health NAME TARGET
  run "$1" "$tmp/proto/grpc/health/v1/health.proto" "$2" dev-auditors \
    grpc.health.v1.Health/Check '{}' "$CONCURRENCY"
}
register() { # register NAME
  run "$1" proto/alliance/v1/commands.proto "$commands" dev-us-force-planning \
    alliance.v1.PlanCommands/RegisterForceElement \
    "{\"meta\":{\"command_id\":\"{{newUUID}}\",\"plan_id\":\"$plan\"},\"element\":{\"element_id\":\"e-{{newUUID}}\",\"name\":\"load\",\"side\":\"SIDE_US\",\"component\":\"COMPONENT_ARMY\",\"kind\":\"ELEMENT_KIND_LOGISTICS\",\"personnel\":100,\"base\":\"Camp Carroll\"},\"present_from\":{\"year\":2025,\"month\":1,\"day\":1}}" \
    "$CONCURRENCY"
}
posture() { # posture NAME CONCURRENCY
  run "$1" proto/alliance/v1/queries.proto "$queries" dev-auditors \
    alliance.v1.PostureQueries/GetPosture \
    "{\"plan_id\":\"$REFERENCE_PLAN\",\"valid_on\":{\"year\":2029,\"month\":6,\"day\":1},\"include_proposed\":true}" \
    "$2"
}

# Alternating, so that a drift of the machine touches every RPC alike.
for ((i = 0; i < RUNS; i++)); do
  health "commands-health-$i" "$commands"
  register "commands-$i"
  health "queries-health-$i" "$queries"
  posture "queries-$i" "$CONCURRENCY"
done
posture queries-one 1
rss_end=
if [[ -n ${server:-} ]]; then
  rss_end=$(rss)
fi

section=$(python3 - "$tmp" "$where" "$CONCURRENCY" "$DURATION" "$GHZ_VERSION" "$RUNS" \
  "${rss_start:-}" "$rss_end" <<'EOF'
import json, statistics, sys
tmp, where, concurrency, duration, version, runs, rss_start, rss_end = sys.argv[1:]
runs = int(runs)

def report(name):
    r = json.load(open(f"{tmp}/{name}.json"))
    lat = {d["percentage"]: d["latency"] / 1e6 for d in r.get("latencyDistribution") or []}
    return r["rps"], lat.get(50, 0), lat.get(99, 0), r.get("statusCodeDistribution") or {}

def cpu(names):
    """CPU µs per call of the server and of ghz over the runs `names` (server None against a
    cluster)."""
    calls = sum(json.load(open(f"{tmp}/{n}.json"))["count"] for n in names)
    server = ghz = 0.0
    for n in names:
        ticks, hz, user, system = open(f"{tmp}/{n}.cpu").read().split()
        server += int(ticks) / int(hz)
        ghz += float(user) + float(system)
    per = lambda seconds: seconds * 1e6 / max(calls, 1)
    return (per(server) if rss_start else None), per(ghz)

def cpu_row(what, names):
    server, ghz = cpu(names)
    shown = f"{server:.0f} µs" if server is not None else "–"
    return server, f"| {what} | {shown} | {ghz:.0f} µs |"

def row(what, names):
    """The median calls/s and p99 (ms) over the runs `names`, and the table row."""
    reports = [report(n) for n in names]
    rps = statistics.median(r[0] for r in reports)
    p50 = statistics.median(r[1] for r in reports)
    p99 = statistics.median(r[2] for r in reports)
    codes = {}
    for r in reports:
        for code, count in r[3].items():
            codes[code] = codes.get(code, 0) + count
    errors = ", ".join(f"{v} {k}" for k, v in sorted(codes.items()) if k != "OK") or "0"
    low, high = min(r[0] for r in reports), max(r[0] for r in reports)
    return rps, p99, (f"| {what} | {rps:.0f} | {low:.0f}–{high:.0f} | {p50:.2f} ms | {p99:.2f} ms "
                 f"| {codes.get('OK', 0)} | {errors} |")

def each(prefix):
    return [f"{prefix}-{i}" for i in range(runs)]

health_c, _, health_c_row = row("`grpc.health.v1.Health/Check`, the commands' server", each("commands-health"))
command, _, command_row = row("`PlanCommands/RegisterForceElement` (one event, durable before the answer)", each("commands"))
health_q, _, health_q_row = row("`grpc.health.v1.Health/Check`, the queries' server", each("queries-health"))
posture, _, posture_row = row("`PostureQueries/GetPosture` (reference plan, 2029-06-01, what-if)", each("queries"))
_, one_p99, one_row = row("the same `GetPosture`, one client", ["queries-one"])
health_cpu, health_cpu_row = cpu_row("`grpc.health.v1.Health/Check` (both servers' runs)", each("commands-health") + each("queries-health"))
command_cpu, command_cpu_row = cpu_row("`PlanCommands/RegisterForceElement`", each("commands"))
posture_cpu, posture_cpu_row = cpu_row("`PostureQueries/GetPosture`", each("queries"))
server_ratios = ""
if health_cpu and command_cpu and posture_cpu:
    server_ratios = (
        f"\n| the server's CPU per call: health check ÷ `RegisterForceElement` | {health_cpu / command_cpu:.2f} | (no target) |"
        f"\n| the server's CPU per call: health check ÷ `GetPosture` | {health_cpu / posture_cpu:.2f} | (no target) |")
memory = ""
if rss_start and rss_end:
    memory = (f" The server's resident memory went from {int(rss_start) / 1024:.0f} to "
              f"{int(rss_end) / 1024:.0f} MiB over the runs.")
print(f"""## gRPC load with ghz ([F8], [G5], [G6])

[ghz](https://ghz.sh) {version}, from the protos alone, against {where}. Each RPC at {concurrency} concurrent calls in {runs} runs of {duration}, alternating with the same server's health check (the floor of a unary call there); then the posture query from one client. Medians over the runs. Reproduce with `make bench-grpc` (it uses the cluster of `make up` when one is running; `make bench` runs it on the embedded log).

| RPC | calls/s | range over runs | p50 | p99 | OK | not OK |
|---|---:|---:|---:|---:|---:|---:|
{health_c_row}
{command_row}
{health_q_row}
{posture_row}
{one_row}

| measure | figure | target |
|---|---:|---:|
| `RegisterForceElement` ÷ the health check, {concurrency} concurrent calls | {command / max(health_c, 1):.2f} | ≥ 0.7 ([G5]) |
| `GetPosture` ÷ the health check, {concurrency} concurrent calls | {posture / max(health_q, 1):.2f} | ≥ 0.7 ([G6]) |
| `GetPosture` p99, one client | {one_p99:.2f} ms | ≤ 1 ms ([G6]) |{server_ratios}

Where the calls' CPU went, at {concurrency} concurrent calls: the server and ghz share this machine's cores, so a call that costs the load tool more (ghz builds and decodes every message from the protos, by reflection) leaves the server fewer calls to answer. The server's CPU per call, its share alone, is the capacity the server would have on cores of its own; its ratios are in the table above.

| RPC | server CPU per call | ghz CPU per call |
|---|---:|---:|
{health_cpu_row}
{command_cpu_row}
{posture_cpu_row}

The calls not OK are those still in flight when ghz stopped at the end of a run (at most the concurrency); ghz cancels them, and they end as `Canceled` or `Unavailable`.{memory}""")
EOF
)
echo "$section"
if [[ -n ${OUT:-} ]]; then
  python3 - "$OUT" "$section" <<'EOF'
import sys
path, section = sys.argv[1], sys.argv[2].rstrip("\n") + "\n"
text = open(path).read()
start = text.find("## gRPC load with ghz")
if start >= 0:
    end = text.find("\n## ", start + 1)
    text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
else:
    text = text.rstrip("\n") + "\n\n" + section
open(path, "w").write(text)
EOF
fi
