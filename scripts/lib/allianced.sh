# Shell functions for scripts that run a throwaway `allianced` (sourced, not run).
#
#   start_allianced BIN DIR [ARGS...]  starts BIN with --data-dir DIR/data, a free loopback port
#                                      and ARGS; returns once its banner says where it listens,
#                                      with `server` (its pid) and `address` (HOST:PORT) set.
#   stop_allianced                     stops it (SIGTERM) and waits; safe to call twice.
#   cargo_target_dir                   where cargo puts its builds (honours CARGO_TARGET_DIR).
#   listening_address LINE             the HOST:PORT a server's banner line ("... listening on
#                                      HOST:PORT ...") names; fails for any other line.

start_allianced() {
  local bin=$1 dir=$2 line
  shift 2
  # The server's stdout goes through a FIFO: its banner line says where it listens once it is
  # ready; the rest is drained to a file so that later lines never block it.
  mkfifo "$dir/stdout"
  NO_COLOR=1 "$bin" --data-dir "$dir/data" --listen 127.0.0.1:0 "$@" \
    >"$dir/stdout" 2>"$dir/stderr" &
  server=$!
  exec 3<"$dir/stdout"
  address=
  while IFS= read -r -t 300 line <&3; do
    address=$(listening_address "$line") && break
  done
  if [[ -z $address ]]; then
    echo "allianced did not report a listening address:" >&2
    cat "$dir/stderr" >&2
    return 1
  fi
  cat <&3 >"$dir/rest" &
}

listening_address() {
  [[ $1 == *" listening on "* ]] || return 1
  local address=${1##* listening on }
  printf '%s\n' "${address%% *}"
}

stop_allianced() {
  if [[ -n ${server:-} ]]; then
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=
  fi
}

cargo_target_dir() {
  "${CARGO:-cargo}" metadata -q --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
}
