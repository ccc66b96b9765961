#!/usr/bin/env bash
# The whole test suite, local AWS emulator included:
#   template checks, formatting, the one-TLS-stack check, lints, unit
#   tests, port contract suites on SQLite and on the emulator, Lambda
#   event tests, and the end-to-end suite
#   twice (embedded store, then AWS adapters on the emulator), the crash
#   test, schemathesis against the OpenAPI document, the provider
#   fixtures of `hookrun trigger` against the providers' own signature
#   libraries, the web console in Chromium (Playwright; axe-core), each
#   fuzz target for
#   20 s (needs the nightly toolchain), and the README's run command's
#   build, so that command compiles nothing afterwards.
# Usage: ./infra/test.sh   (needs cargo, python3 and node with npm;
# installs the Python tools it uses into .venv from
# infra/requirements-test.txt, the Debian packages of
# infra/apt-packages.txt when missing, and the browser tests' npm
# packages from console/tests/package-lock.json)
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

# Chromium (apt) and the browser tests' packages (npm) meanwhile too.
mkdir -p target
browser=""
if [ -z "${CHROMIUM_PATH:-}" ] && ! command -v chromium > /dev/null; then
  # Never a password prompt: a background job waiting on one would stop
  # the script without a word (sudo -n fails instead, and says why).
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  packages=$(grep -v '^#' infra/apt-packages.txt | xargs)
  (
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    $sudo apt-get install -y -q $packages || { $sudo apt-get update -q && $sudo apt-get install -y -q $packages; }
  ) > target/apt-install.log 2>&1 &
  browser=$!
fi
(cd console/tests && npm ci --no-audit --no-fund --loglevel=error) > target/npm-install.log 2>&1 &
npm_install=$!

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

echo "== hookrun trigger's fixtures, checked with Stripe's, Slack's and Standard Webhooks' own libraries"
.venv/bin/python infra/fixtures-check.py target/debug/hookrun

echo "== the web console in Chromium: Playwright against hookrun serve, axe-core ($SECONDS s so far)"
if [ -n "$browser" ] && ! wait "$browser"; then
  cat target/apt-install.log
  echo "could not install chromium (infra/apt-packages.txt): install it, or set CHROMIUM_PATH to a Chromium" >&2
  exit 1
fi
if ! wait "$npm_install"; then
  cat target/npm-install.log
  exit 1
fi
# Screenshots go to target/console-screenshots/.
HOOKRUN_BIN=target/debug/hookrun npm --prefix console/tests test

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
