#!/usr/bin/env bash
# Builds the fuzz targets in fuzz/ (libFuzzer, with the coverage
# instrumentation cargo-fuzz uses, no sanitizer: the code is safe Rust) and
# runs each for SECONDS (default 20) from its committed seed corpus; new
# inputs go to a scratch directory, so the repository stays clean. A crash
# fails the script and leaves its input under target/fuzz/artifacts/.
# Long run of one target: `cargo +nightly fuzz run <target>` (cargo-fuzz from
# crates.io), or `./infra/fuzz.sh 3600 <target>`.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(signature_headers input_mapping paging_cursor outbound_url json_depth)
fi
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
triple="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# Brief runs build fast and fuzz slowly; long ones the other way round.
profile=release
if [ "$seconds" -le 60 ]; then profile=smoke; fi
cargo +nightly build --profile "$profile" --locked --manifest-path fuzz/Cargo.toml \
  --target "$triple" --target-dir target/fuzz --bins
mkdir -p target/fuzz/artifacts
failed=0
for t in "${targets[@]}"; do
  scratch="$(mktemp -d)"
  echo "== fuzz $t (${seconds} s)"
  if ! "target/fuzz/$triple/$profile/$t" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="target/fuzz/artifacts/$t-" "$scratch" "fuzz/corpus/$t" \
      > "target/fuzz/$t.log" 2>&1; then
    failed=1
    tail -n 30 "target/fuzz/$t.log"
  fi
  grep -E "^stat::(number_of_executed_units|new_units_added)|Done [0-9]+ runs" "target/fuzz/$t.log" || true
  echo "corpus: $(ls "$scratch" | wc -l) new inputs beside $(ls "fuzz/corpus/$t" | wc -l) seeds"
  rm -rf "$scratch"
done
exit "$failed"
