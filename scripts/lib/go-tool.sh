# A shell function for scripts that run a tool built from the Go module proxy (sourced, not run).
#
#   go_tool NAME MODULE VERSION  prints the path of NAME at VERSION, cached under
#                                ~/.cache/alliance/tools; the first call installs it there
#                                (`go install MODULE@VERSION`).

go_tool() {
  local name=$1 module=$2 version=$3
  local tools="${XDG_CACHE_HOME:-$HOME/.cache}/alliance/tools"
  local bin="$tools/$name-$version"
  if [[ ! -x $bin ]]; then
    echo "${0##*/}: installing $name $version from the Go module proxy" >&2
    mkdir -p "$tools/gobin-$name"
    GOBIN="$tools/gobin-$name" go install "$module@$version" >&2
    mv "$tools/gobin-$name/$name" "$bin"
  fi
  printf '%s\n' "$bin"
}
