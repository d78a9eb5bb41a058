#!/usr/bin/env bash
# Runs the Python gRPC client in tests/interop against a throwaway allianced on the embedded log.
# The client knows the service from proto/ alone: its stubs are generated here, at each run,
# into a temporary directory. The server gets a temporary data directory and a free loopback
# port, loads the reference plan, and is stopped afterwards; the directory is deleted.
#
# The packages (tests/interop/requirements.txt, all pinned) go into a virtual environment in
# ${XDG_CACHE_HOME:-~/.cache}/alliance/interop-venv, installed from PyPI on the first run and
# again only when requirements.txt changes.
#
# Environment: ALLIANCED_BIN (default $CARGO_TARGET_DIR/debug/allianced, CARGO_TARGET_DIR
# defaulting to target), PYTHON (the interpreter the environment is made with, default python3).
# Arguments are passed to `python -m unittest` (default: discover the tests in tests/interop).
# Then tests/interop/grpcurl.sh calls every service through server reflection alone.
set -euo pipefail
cd "$(dirname "$0")/../.."

here=tests/interop
bin=${ALLIANCED_BIN:-${CARGO_TARGET_DIR:-target}/debug/allianced}
if [[ ! -x $bin ]]; then
  echo "run.sh: no allianced at $bin (cargo build -p allianced, or set ALLIANCED_BIN)" >&2
  exit 2
fi

venv=${XDG_CACHE_HOME:-$HOME/.cache}/alliance/interop-venv
marker=$venv/alliance-requirements.txt
if [[ ! -x $venv/bin/python ]] || ! cmp -s "$here/requirements.txt" "$marker"; then
  echo "run.sh: installing the client's packages into $venv" >&2
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$marker"
fi
python=$venv/bin/python

source scripts/lib/allianced.sh
tmp=$(mktemp -d)
trap 'stop_allianced; rm -rf "$tmp"' EXIT

# Stubs from the contract: alliance/v1/*_pb2.py and *_pb2_grpc.py. The well-known types
# (google/protobuf/timestamp.proto) come with grpcio-tools.
wkt=$("$python" -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')
mkdir "$tmp/stubs"
"$python" -m grpc_tools.protoc -I proto -I "$wkt" \
  --python_out="$tmp/stubs" --grpc_python_out="$tmp/stubs" proto/alliance/v1/*.proto

start_allianced "$bin" "$tmp" \
  --token-file deploy/dev-tokens.toml --reference-plan deploy/reference-plan.json
echo "run.sh: allianced listening on $address" >&2

if (($# == 0)); then
  set -- discover --start-directory "$here" --pattern 'test_*.py' --verbose
fi
status=0
ALLIANCE_ADDRESS=$address PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$tmp/stubs:$here${PYTHONPATH:+:$PYTHONPATH}" \
  "$python" -m unittest "$@" || status=$?
if ((status != 0)); then
  echo "run.sh: the Python client failed; the server's log (last 40 lines):" >&2
  tail -n 40 "$tmp/stderr" >&2
  exit "$status"
fi
# grpcurl, with nothing but the server's reflection.
"$here/grpcurl.sh" "$address"
