#!/usr/bin/env bash
# gRPC load with ghz, a standard gRPC load tool (from the Go module proxy, cached under
# ~/.cache/alliance/tools): the posture query and a command RPC, driven from the protos alone.
#
# Against the local cluster when `make up` is running (the addresses in
# ${ALLIANCE_CLUSTER_DIR:-.cluster}/addresses: the posture query goes to a projection replica,
# the command to an allianced instance); otherwise against a throwaway release `allianced` on the
# embedded log. Prints a Markdown section; with OUT=FILE it also replaces the section in FILE.
#
# Environment: CARGO (default cargo), GHZ_VERSION, DURATION (default 10s), CONCURRENCY (default
# 16), OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
GHZ_VERSION=${GHZ_VERSION:-v0.120.0}
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-16}
REFERENCE_PLAN=019a0000-0000-7000-8000-000000000001
source scripts/lib/go-tool.sh
ghz=$(go_tool ghz github.com/bojand/ghz/cmd/ghz "$GHZ_VERSION")

source scripts/lib/allianced.sh
tmp=$(mktemp -d)
trap 'stop_allianced; rm -rf "$tmp"' EXIT

cluster_dir=${ALLIANCE_CLUSTER_DIR:-.cluster}
strip() { local a=${1#http://}; echo "${a%/}"; }
if [[ -f $cluster_dir/addresses ]]; then
  commands=$(strip "$(awk '$1 ~ /^allianced/ {print $2; exit}' "$cluster_dir/addresses")")
  queries=$(strip "$(awk '$1 ~ /projection/ {print $2; exit}' "$cluster_dir/addresses")")
  where="the local cluster (\`make up\`): commands to \`allianced\` at $commands, posture queries to an \`alliance-projection\` replica at $queries, all on Kafka"
else
  "$CARGO" build -q --release -p allianced
  start_allianced "$(cargo_target_dir)/release/allianced" "$tmp"
  commands=$address
  queries=$address
  where="a release \`allianced\` on the embedded log (SQLite, \`synchronous=FULL\`) on loopback"
fi

run() {
  local name=$1 target=$2 token=$3 call=$4 data=$5
  "$ghz" --insecure --proto proto/alliance/v1/"$name".proto --import-paths proto \
    --call "$call" --metadata "{\"authorization\":\"Bearer $token\"}" \
    --data "$data" --concurrency "$CONCURRENCY" --duration "$DURATION" \
    --format json "$target" >"$tmp/$name.json"
}

# A plan of its own for the commands, so the reference plan is left as it is.
plan=$(python3 -c 'import uuid; print(uuid.uuid4())')
"$ghz" --insecure --proto proto/alliance/v1/commands.proto --import-paths proto \
  --call alliance.v1.PlanCommands/CreatePlan \
  --metadata '{"authorization":"Bearer dev-alliance-approvers"}' -n 1 -c 1 \
  --data "{\"meta\":{\"command_id\":\"ghz-plan-$plan\",\"plan_id\":\"$plan\"},\"name\":\"ghz\",\"horizon_start\":{\"year\":2020,\"month\":1,\"day\":1},\"horizon_end\":{\"year\":2040,\"month\":12,\"day\":31}}" \
  "$commands" >/dev/null

run commands "$commands" dev-us-force-planning alliance.v1.PlanCommands/RegisterForceElement \
  "{\"meta\":{\"command_id\":\"{{newUUID}}\",\"plan_id\":\"$plan\"},\"element\":{\"element_id\":\"e-{{newUUID}}\",\"name\":\"load\",\"side\":\"SIDE_US\",\"component\":\"COMPONENT_ARMY\",\"kind\":\"ELEMENT_KIND_LOGISTICS\",\"personnel\":100,\"base\":\"Camp Carroll\"},\"present_from\":{\"year\":2025,\"month\":1,\"day\":1}}"
run queries "$queries" dev-auditors alliance.v1.PostureQueries/GetPosture \
  "{\"plan_id\":\"$REFERENCE_PLAN\",\"valid_on\":{\"year\":2029,\"month\":6,\"day\":1},\"include_proposed\":true}"

section=$(python3 - "$tmp" "$where" "$CONCURRENCY" "$DURATION" "$GHZ_VERSION" <<'EOF'
import json, sys
tmp, where, concurrency, duration, version = sys.argv[1:]
rows = []
for name, what in [("commands", "`PlanCommands/RegisterForceElement` (one event, durable before the answer)"),
                   ("queries", "`PostureQueries/GetPosture` (reference plan, 2029-06-01, what-if)")]:
    r = json.load(open(f"{tmp}/{name}.json"))
    lat = {d["percentage"]: d["latency"] / 1e6 for d in r.get("latencyDistribution") or []}
    codes = r.get("statusCodeDistribution") or {}
    ok = codes.get("OK", 0)
    errors = ", ".join(f"{v} {k}" for k, v in sorted(codes.items()) if k != "OK") or "0"
    rows.append(f"| {what} | {r['rps']:.0f} | {lat.get(50, 0):.2f} ms | {lat.get(99, 0):.2f} ms | {ok} | {errors} |")
print(f"""## gRPC load with ghz ([F8])

[ghz](https://ghz.sh) {version}, from the protos alone, {concurrency} concurrent calls for {duration} per RPC, against {where}. Reproduce with `make bench-grpc` (it uses the cluster of `make up` when one is running).

| RPC | calls/s | p50 | p99 | OK | not OK |
|---|---:|---:|---:|---:|---:|
""" + "\n".join(rows) + """

The calls not OK are those still in flight when ghz stopped at the end of the duration (at most the concurrency, 16); ghz cancels them, and they end as `Canceled` or `Unavailable`.""")
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
