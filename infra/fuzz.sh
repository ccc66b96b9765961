#!/usr/bin/env bash
# Builds the fuzz targets in fuzz/ (libFuzzer, with the coverage
# instrumentation cargo-fuzz uses, no sanitizer: the code is safe Rust) and
# runs each for SECONDS (default 20) from its committed seed corpus, one
# target per core at a time (FUZZ_JOBS to change); new
# inputs go to a scratch directory, so the repository stays clean. A crash
# fails the script and leaves its input under target/fuzz/artifacts/.
# Long run of one target: `cargo +nightly fuzz run <target>` (cargo-fuzz from
# crates.io), or `./infra/fuzz.sh 3600 <target>`.
set -euo pipefail
cd "$(dirname "$0")/.."
# `./infra/fuzz.sh build` only builds (the test command builds while other
# suites run).
seconds="${1:-20}"
shift || true
build_only=0
if [ "$seconds" = build ]; then build_only=1; seconds=20; fi
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
if [ "$build_only" = 1 ]; then exit 0; fi
mkdir -p target/fuzz/artifacts
# libFuzzer uses one core: run one target per core at a time.
jobs="${FUZZ_JOBS:-$(nproc)}"

# Runs target $1 and prints its summary; fails on a crash.
fuzz_one() {
  local t="$1" scratch status=0
  scratch="$(mktemp -d)"
  "target/fuzz/$triple/$profile/$t" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="target/fuzz/artifacts/$t-" "$scratch" "fuzz/corpus/$t" \
      > "target/fuzz/$t.log" 2>&1 || status=$?
  {
    echo "== fuzz $t (${seconds} s)"
    if [ "$status" -ne 0 ]; then tail -n 30 "target/fuzz/$t.log"; fi
    grep -E "^stat::(number_of_executed_units|new_units_added)|Done [0-9]+ runs" "target/fuzz/$t.log" || true
    echo "corpus: $(ls "$scratch" | wc -l) new inputs beside $(ls "fuzz/corpus/$t" | wc -l) seeds"
  } > "target/fuzz/$t.summary"
  rm -rf "$scratch"
  return "$status"
}

pids=()
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  fuzz_one "$t" &
  pids+=("$!")
done
failed=0
for i in "${!targets[@]}"; do
  wait "${pids[$i]}" || failed=1
  cat "target/fuzz/${targets[$i]}.summary"
done
exit "$failed"
