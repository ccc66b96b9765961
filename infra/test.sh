#!/usr/bin/env bash
# The whole test suite, local AWS emulator included:
#   template checks, formatting, the one-TLS-stack check, lints, unit
#   tests, port contract suites on SQLite and on the emulator, Lambda
#   event tests, and the end-to-end suite
#   twice (embedded store, then AWS adapters on the emulator), the crash
#   test, schemathesis against the OpenAPI document, each fuzz target for
#   20 s (needs the nightly toolchain), and the README's run command's
#   build, so that command compiles nothing afterwards.
# Usage: ./infra/test.sh   (needs cargo and python3; installs the Python
# tools it uses into .venv from infra/requirements-test.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0

echo "== tools (.venv: moto server, cfn-lint, aws-sam-cli, schemathesis), installed while clippy builds"
# pip mostly downloads and clippy mostly compiles: they run side by side.
tools=""
if [ ! -x .venv/bin/moto_server ] || ! cmp -s infra/requirements-test.txt .venv/.requirements; then
  mkdir -p target
  (
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-test.txt
    cp infra/requirements-test.txt .venv/.requirements
  ) > target/pip-install.log 2>&1 &
  tools=$!
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== one HTTP and TLS stack in every binary"
./infra/tls-check.sh

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

if [ -n "$tools" ] && ! wait "$tools"; then
  cat target/pip-install.log
  exit 1
fi

echo "== template checks ($SECONDS s so far)"
.venv/bin/cfn-lint template.yaml
.venv/bin/sam validate --lint --template template.yaml --region us-east-1
.venv/bin/python infra/template-policy-check.py

echo "== local AWS emulator"
# shellcheck source=infra/moto.sh
. infra/moto.sh
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT

echo "== ($SECONDS s so far)"
echo "== cargo test: unit, contracts (SQLite and emulator), Lambda events, end-to-end on SQLite"
cargo test --workspace --locked -- --include-ignored

echo "== end-to-end suite on the AWS adapters against the emulator, schemathesis meanwhile ($SECONDS s so far)"
# The suite mostly waits on the emulator: the fuzz targets build and
# schemathesis runs against hookrun serve meanwhile.
./infra/fuzz.sh build > target/fuzz-build.log 2>&1 &
fuzz_build=$!
HOOKRUN_BIN=target/debug/hookrun ./infra/schemathesis.sh 30 > target/schemathesis.log 2>&1 &
schemathesis=$!
# `--workspace`, as above, so the features are the same and nothing is
# rebuilt.
HOOKRUN_E2E_BACKEND=aws cargo test --workspace --test e2e --locked -- --test-threads=1

echo "== schemathesis against hookrun serve: every operation of /openapi.json ($SECONDS s so far)"
if ! wait "$schemathesis"; then
  cat target/schemathesis.log
  exit 1
fi
sed -n '/SUMMARY/,$p' target/schemathesis.log

echo "== fuzz targets, briefly (long runs: see README, Fuzzing) ($SECONDS s so far)"
if ! wait "$fuzz_build"; then
  cat target/fuzz-build.log
  exit 1
fi
./infra/fuzz.sh 20

echo "== the README's run command, built ($SECONDS s so far)"
# `cargo run -p hookrun` resolves hookrun-core's features for the binary
# alone (no test-support, no Lambda glue), which the workspace's test
# build above does not: built here, the README's first command after this
# script compiles nothing. Last, because it replaces target/debug/hookrun,
# the binary the suites above run.
cargo build -p hookrun --locked
echo "== all passed in $SECONDS s"
