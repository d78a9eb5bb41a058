#!/usr/bin/env bash
# grpcurl (from the Go module proxy, cached under ~/.cache/alliance/tools) against a running
# server through server reflection alone: every alliance.v1 service is listed and described, and
# each answers a call. Usage: tests/interop/grpcurl.sh HOST:PORT
set -euo pipefail
cd "$(dirname "$0")/../.."

address=${1:?usage: grpcurl.sh HOST:PORT}
version=${GRPCURL_VERSION:-v1.9.3}
source scripts/lib/go-tool.sh
grpcurl=$(go_tool grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl "$version")

fail() {
  echo "grpcurl.sh: $*" >&2
  exit 1
}
call() {
  local token=$1
  shift
  "$grpcurl" -plaintext -H "authorization: Bearer $token" "$@"
}

services=$("$grpcurl" -plaintext "$address" list)
for service in alliance.v1.PlanCommands alliance.v1.PostureQueries alliance.v1.ReadModelAdmin \
  alliance.v1.AuditLog alliance.v1.Simulation grpc.health.v1.Health; do
  grep -qx "$service" <<<"$services" || fail "$service is not listed by reflection: $services"
  "$grpcurl" -plaintext "$address" describe "$service" >/dev/null ||
    fail "$service cannot be described"
done

plan=019a0000-0000-7000-8000-000000000001
call dev-auditors "$address" alliance.v1.PlanCommands/ListPlans | grep -q "$plan" ||
  fail "ListPlans does not list the reference plan"
call dev-auditors -d "{\"plan_id\":\"$plan\",\"valid_on\":{\"year\":2029,\"month\":6,\"day\":1}}" \
  "$address" alliance.v1.PostureQueries/GetPosture | grep -q '"personnel"' ||
  fail "GetPosture gave no personnel"
call dev-auditors -d "{\"plan_id\":\"$plan\"}" "$address" alliance.v1.AuditLog/VerifyPlan |
  grep -q '"ok": true' || fail "VerifyPlan did not verify the reference plan"
missing=$(call dev-auditors -d '{"run_id":"01a21d90-0000-7000-8000-0000000000ff"}' \
  "$address" alliance.v1.Simulation/GetRun 2>&1 || true)
grep -q "NotFound" <<<"$missing" || fail "GetRun of an unknown run: $missing"
"$grpcurl" -plaintext -d '{"service":"alliance.v1.PlanCommands"}' "$address" \
  grpc.health.v1.Health/Check | grep -q SERVING || fail "PlanCommands is not serving"
echo "grpcurl.sh: every service listed, described and answering through reflection at $address" >&2
