#!/usr/bin/env bash
# Cold start of the Lambda bootstraps next to a hello-world lambda_runtime
# binary (bench/src/bin/hello_lambda.rs), all built with the release profile
# and started in turns against a fake Runtime API (bench/src/bin/coldstart.rs).
# Prints, per binary, init (spawn to its first `next`) and first answer
# (spawn to its answer to a `GET /healthz` event), p50 and p90, and each as
# a multiple of the hello-world's.
#
# With --sizes, also builds the five arm64 bootstraps as they ship (the
# functions' packages only, so no feature of the CLI's is unified into them;
# about 7 minutes) and prints their sizes.
# Usage: ./infra/bench-coldstart.sh [RUNS] [--sizes]   (default 200 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=200
sizes=false
for a in "$@"; do
  case "$a" in
    --sizes) sizes=true ;;
    *) runs="$a" ;;
  esac
done
# Two builds, so that no feature of one side is unified into the other.
cargo build --release --locked -p hookrun-ingress -p hookrun-api
cargo build --release --locked -p hookrun-bench --bin hello_lambda --bin coldstart
bin=target/release
ls -l "$bin/hello_lambda" "$bin/hookrun-ingress" "$bin/hookrun-api" | awk '{printf "%s: %.1f MB (x86_64)\n", $9, $5/1e6}'
"$bin/coldstart" "$runs" hello-world="$bin/hello_lambda" ingress="$bin/hookrun-ingress" api="$bin/hookrun-api"

if $sizes; then
  # cargo-lambda and ziglang (the arm64 linker) from PyPI, as in the README.
  [ -x .venv/bin/cargo-lambda ] && PATH="$PWD/.venv/bin:$PATH"
  functions=(ingress api executor delivery relay realtime)
  cargo lambda build --release --arm64 "${functions[@]/#/--package=hookrun-}"
  for f in "${functions[@]/#/target/lambda/hookrun-}"; do
    f="$f/bootstrap"
    size=$(stat -c %s "$f")
    awk -v n="$(basename "$(dirname "$f")")" -v s="$size" 'BEGIN { printf "%s: %.2f MB (arm64, stripped)\n", n, s / 1e6 }'
  done
fi
