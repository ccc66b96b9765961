# Sourced by the before/after benchmarks (bench-executor.sh,
# bench-binary-size.sh): BASE checked out in a temporary git worktree
# under OUT, removed on exit, with the same target directory as the
# working copy, so what the two sides share is built once.
# Usage: bench_sides OUT BASE; then, per side, src=$(side_src before|after)

bench_sides() {
  local out="$1" base="$2"
  rm -rf "$out"
  mkdir -p "$out"
  git worktree add --quiet --detach "$out/base-src" "$base"
  # shellcheck disable=SC2064 # the path is fixed now, on purpose
  trap "git worktree remove --force '$out/base-src'" EXIT
  export CARGO_TARGET_DIR="$PWD/target"
  BENCH_OUT="$out"
}

# The source tree of a side, after saying which commit it is.
side_src() {
  local src="$PWD"
  [ "$1" = before ] && src="$BENCH_OUT/base-src"
  echo "== $1: $(git -C "$src" rev-parse --short HEAD)" >&2
  echo "$src"
}
