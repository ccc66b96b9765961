#!/usr/bin/env bash
# The executor's bootstrap before and after a change, side by side in one
# run: its stripped arm64 size (the cargo-lambda build `sam build` runs) and
# its cold start (x86_64 release builds started in turns against the fake
# Runtime API of bench/src/bin/coldstart.rs, next to a hello-world
# lambda_runtime binary; the executor's first event is an empty SQS batch).
#
# BASE is built from a temporary git worktree with the same target
# directory, so dependencies the two sides share are built once.
# Needs cargo-lambda and ziglang in .venv (pip install cargo-lambda ziglang,
# as the README's deploy section says) and the aarch64-unknown-linux-gnu
# target. About 15 minutes on the 2-core build machine.
# Usage: ./infra/bench-executor.sh BASE [RUNS]   (default 200 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
base="${1:?usage: bench-executor.sh BASE [RUNS]}"
runs="${2:-200}"
[ -x .venv/bin/cargo-lambda ] && PATH="$PWD/.venv/bin:$PATH"
out="$PWD/target/bench-executor"
. infra/bench-sides.sh
bench_sides "$out" "$base"

for side in before after; do
  src=$(side_src "$side")
  (
    cd "$src"
    cargo build --release --locked -p hookrun-executor
    cargo lambda build --release --arm64 --package=hookrun-executor --lambda-dir "$out/lambda-$side"
  )
  cp "$CARGO_TARGET_DIR/release/hookrun-executor" "$out/executor-$side"
done

cargo build --release --locked -p hookrun-bench --bin hello_lambda --bin coldstart
for side in before after; do
  f="$out/lambda-$side/hookrun-executor/bootstrap"
  awk -v n="executor $side" -v s="$(stat -c %s "$f")" 'BEGIN { printf "%s: %.2f MB (arm64, stripped)\n", n, s / 1e6 }'
done
"$CARGO_TARGET_DIR/release/coldstart" "$runs" \
  hello-world="$CARGO_TARGET_DIR/release/hello_lambda" \
  executor-before="$out/executor-before" \
  executor-after="$out/executor-after"
