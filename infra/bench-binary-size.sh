#!/usr/bin/env bash
# The `hookrun` binary's release size before and after a change, side by
# side in one run (e.g. what the web console's embedded files add):
# BASE is built from a temporary git worktree with the same target
# directory, so what the two sides share is built once. The release
# profile strips the binary. About 15 minutes on the 2-core build machine.
# Usage: ./infra/bench-binary-size.sh BASE
set -euo pipefail
cd "$(dirname "$0")/.."
base="${1:?usage: bench-binary-size.sh BASE}"
out="$PWD/target/bench-binary-size"
. infra/bench-sides.sh
bench_sides "$out" "$base"
for side in before after; do
  src=$(side_src "$side")
  (cd "$src" && cargo build --release --locked -p hookrun)
  cp "$CARGO_TARGET_DIR/release/hookrun" "$out/hookrun-$side"
done
before=$(wc -c < "$out/hookrun-before")
after=$(wc -c < "$out/hookrun-after")
awk -v b="$before" -v a="$after" 'BEGIN {
  printf "hookrun release binary: %d bytes before, %d after (%+d bytes, %+.1f%%)\n", b, a, a - b, (a - b) * 100 / b
}'
