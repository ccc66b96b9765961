#!/usr/bin/env bash
# Trigger throughput of `hookrun serve` on the embedded store next to a bare
# server that only verifies the signature, parses the JSON and answers 202
# (bench/src/bin/bare.rs), both driven in the same run by the same load
# generator (bench/src/bin/loadgen.rs: signed 1 KiB bodies, keep-alive
# connections). Prints each one's accepted calls per second, p50/p99
# latency, and hookrun's share of the floor. Rate limits are off for the
# run; the echo agent runs the accepted triggers meanwhile, as in service.
# Usage: ./infra/bench-serve.sh [SECONDS] [CONNECTIONS]   (default 10, 32)
#   HOOKRUN_BASELINE=path/to/hookrun also measures that binary (before/after).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
conns="${2:-32}"
cargo build --profile perf --locked -p hookrun -p hookrun-bench
bin=target/perf
work="$(mktemp -d)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# Waits for "listening on http://ADDR" in a log; prints ADDR.
addr_of() {
  for _ in $(seq 1 100); do
    if a="$(grep -o 'listening on http://[0-9.:]*' "$1" | head -1 | sed 's|listening on http://||')" && [ -n "$a" ]; then
      echo "$a"; return 0
    fi
    sleep 0.1
  done
  echo "no address in $1" >&2; cat "$1" >&2; return 1
}

secret="bench-secret-$(date +%s%N)"
"$bin/bare" 127.0.0.1:0 "$secret" > "$work/bare.log" 2>&1 &
pids+=($!)
bare="$(addr_of "$work/bare.log")"

admin="bench-admin-key-0123456789-abcdefghijklmnop"
# Starts a `hookrun serve` binary on a fresh store with an echo agent;
# sets `url` (its trigger URL) and `key` (the agent's secret).
start_serve() {
  local exe="$1" name="$2" serve ws agent
  HOOKRUN_BOOTSTRAP_ADMIN_KEY="$admin" HOOKRUN_RATE_LIMIT_PER_IP=0 HOOKRUN_MAX_CONNECTIONS_PER_ADDRESS=100000 \
    HOOKRUN_RATE_LIMIT_PER_TRIGGER=0 HOOKRUN_RATE_LIMIT_PER_WORKSPACE=0 RUST_LOG=warn \
    "$exe" serve --data-dir "$work/$name" --addr 127.0.0.1:0 > "$work/$name.log" 2>&1 &
  pids+=($!)
  serve="$(addr_of "$work/$name.log")"
  ws="$(grep -o 'workspace: [a-z0-9_]*' "$work/$name.log" | head -1 | cut -d' ' -f2)"
  agent="$(curl -sf -X POST "http://$serve/api/v1/agents" -H "authorization: Bearer $admin" \
    -H 'content-type: application/json' -d '{"name":"bench","runner":{"type":"echo"}}')"
  url="http://$serve/api/v1/webhooks/$ws/$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$agent")/trigger"
  key="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["webhook_secret"])' "$agent")"
}

echo "== bare verify-parse-202 server, ${seconds} s, ${conns} connections"
floor="$("$bin/loadgen" "http://$bare/trigger" "$secret" "$seconds" "$conns")"
echo "$floor"
# HOOKRUN_BASELINE=/path/to/an/older/hookrun: measured too, in the same run
# (on its own store, stopped before the current one starts).
if [ -n "${HOOKRUN_BASELINE:-}" ]; then
  start_serve "$HOOKRUN_BASELINE" baseline
  echo "== baseline $HOOKRUN_BASELINE, ${seconds} s, ${conns} connections"
  base="$("$bin/loadgen" "$url" "$key" "$seconds" "$conns")"
  echo "$base"
  kill "${pids[-1]}"
fi
start_serve "$bin/hookrun" serve
echo "== hookrun serve (embedded store), ${seconds} s, ${conns} connections"
ours="$("$bin/loadgen" "$url" "$key" "$seconds" "$conns")"
echo "$ours"
python3 - "$floor" "$ours" "${base:-}" <<'PY'
import json, sys
floor, ours = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ratio = ours["accepted_per_second"] / max(floor["accepted_per_second"], 1)
print(f"hookrun serve: {ours['accepted_per_second']:.0f}/s (p50 {ours['p50_ms']} ms, p99 {ours['p99_ms']} ms); "
      f"bare: {floor['accepted_per_second']:.0f}/s (p50 {floor['p50_ms']} ms, p99 {floor['p99_ms']} ms); "
      f"ratio {ratio:.1%}")
if len(sys.argv) > 3 and sys.argv[3]:
    base = json.loads(sys.argv[3])
    print(f"baseline: {base['accepted_per_second']:.0f}/s (p50 {base['p50_ms']} ms, p99 {base['p99_ms']} ms); "
          f"hookrun serve / baseline {ours['accepted_per_second'] / max(base['accepted_per_second'], 1):.2f}x")
PY
