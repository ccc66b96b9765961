#!/usr/bin/env bash
# What a replay costs before and after a change, on one machine in one run:
# the replay bench (shared/benches/replay.rs) on <commit> saved as the
# Criterion baseline "before", then on this checkout compared with it.
# Both builds share this checkout's target directory.
#
#   bench/replay-before-after.sh <commit>
set -euo pipefail
base=${1:?usage: bench/replay-before-after.sh <commit>}
root=$(git rev-parse --show-toplevel)
tree=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$tree"' EXIT
git -C "$root" worktree add --detach "$tree" "$base" >/dev/null
export CARGO_TARGET_DIR="$root/target"
echo "== before: $(git -C "$root" log -1 --format='%h %s' "$base" | cut -c1-72)"
(cd "$tree" && cargo bench -p hookrun-core --bench replay -- --save-baseline before)
echo "== after: this checkout"
(cd "$root" && cargo bench -p hookrun-core --bench replay -- --baseline before)
