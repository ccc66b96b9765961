#!/usr/bin/env bash
# Real-time event latency of `hookrun serve` on the embedded store: a
# streaming agent sends LINES lines DELAY_MS apart, a WebSocket client
# subscribed to the agent times each line's `agent.log` event
# (bench/src/bin/live_latency.rs). Prints p50/p99/max from the agent's
# write to the client's receipt, and from hookrun's recording of the line.
# Usage: ./infra/bench-live.sh [LINES] [DELAY_MS]   (default 1000, 2)
set -euo pipefail
cd "$(dirname "$0")/.."
lines="${1:-1000}"
delay="${2:-2}"
cargo build --profile perf --locked -p hookrun -p hookrun-bench
bin=target/perf
work="$(mktemp -d)"
trap 'kill "$serve" 2>/dev/null || true; rm -rf "$work"' EXIT
admin="bench-admin-key-0123456789-abcdefghijklmnop"
HOOKRUN_BOOTSTRAP_ADMIN_KEY="$admin" HOOKRUN_OUTBOUND_ALLOW_HTTP=true \
  HOOKRUN_OUTBOUND_ALLOW_CIDRS=127.0.0.1/32 \
  "$bin/hookrun" serve --addr 127.0.0.1:0 --data-dir "$work/data" > "$work/serve.out" 2> "$work/serve.log" &
serve=$!
for _ in $(seq 1 100); do
  addr="$(grep -o 'listening on http://[0-9.:]*' "$work/serve.out" | sed 's|listening on ||' || true)"
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/serve.log"; exit 1; }
"$bin/live_latency" "$addr" "$admin" "$lines" "$delay"
