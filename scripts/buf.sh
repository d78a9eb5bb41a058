#!/usr/bin/env bash
# Lints the gRPC contract (proto/, configured by buf.yaml) with buf, then checks it for breaking
# changes against the previous commit's protos.
#
# buf comes from npm (@bufbuild/buf, pinned below) and is installed once into a cache outside the
# clone; later runs find it there and need no network. BUF_VERSION overrides the pin.
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION="${BUF_VERSION:-1.75.0}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/alliance/buf/$BUF_VERSION"
buf="$cache/node_modules/.bin/buf"

say() { echo "buf.sh: $*" >&2; }

if [[ ! -x $buf ]] || [[ "$("$buf" --version 2>/dev/null)" != "$BUF_VERSION" ]]; then
  say "installing @bufbuild/buf@$BUF_VERSION into $cache"
  mkdir -p "$cache"
  npm install --prefix "$cache" --no-audit --no-fund --loglevel=error "@bufbuild/buf@$BUF_VERSION" >&2
  if [[ "$("$buf" --version 2>/dev/null)" != "$BUF_VERSION" ]]; then
    say "the install did not leave a working buf $BUF_VERSION at $buf"
    exit 1
  fi
fi

"$buf" lint
say "lint: proto/ passes"

# Breaking changes: the work tree against the previous commit. The previous commit's protos are
# read with proto/ as the module root, which holds whether or not that commit had a buf.yaml.
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  say "breaking: skipped, this is not a git checkout"
  exit 0
fi
if ! prev=$(git rev-parse -q --verify 'HEAD~1^{commit}'); then
  say "breaking: skipped, there is no previous commit (a single-commit or shallow clone)"
  exit 0
fi
prev_files=$(git ls-tree -r --name-only "$prev" -- proto)
if ! grep -q '\.proto$' <<<"$prev_files"; then
  say "breaking: skipped, the previous commit ($(git rev-parse --short "$prev")) has no protos"
  exit 0
fi
# The commit is named by its hash (what HEAD~1 is here), and the repository by its git directory
# (".git", or the main checkout's in a linked worktree), so that a linked worktree compares
# against its own previous commit.
git_dir=$(git rev-parse --git-common-dir)
"$buf" breaking --against "$git_dir#format=git,ref=$prev,subdir=proto"
say "breaking: no breaking change against the previous commit ($(git rev-parse --short "$prev"))"
