#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit, contract and end-to-end tests.
# Usage: ./infra/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test (unit, contract on SQLite, end-to-end on SQLite)"
cargo test --workspace --locked
