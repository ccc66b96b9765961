#!/usr/bin/env bash
# What one trigger costs on AWS: starts the local AWS emulator, counts every
# AWS call of each trigger route, its run and its delivery, and prints the
# table docs/cost.md quotes (round trips before the 202, dollars per
# million triggers at list prices). Fails when a route is over budget.
# Usage: ./infra/cost.sh   (needs .venv from ./infra/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=infra/moto.sh
. infra/moto.sh
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
cargo test -p hookrun-core --features aws-streams,test-support --test aws_calls --locked \
  -- --include-ignored --nocapture
