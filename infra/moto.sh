#!/usr/bin/env bash
# Starts the local AWS emulator (moto server) on a free loopback port.
# Source it: `. infra/moto.sh`; it exports AWS_ENDPOINT_URL, AWS_REGION and
# dummy credentials, and MOTO_PID (stop it with `kill $MOTO_PID`).
# Expects moto in .venv (infra/test.sh installs it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p "$root/target"
"$root/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "$root/target/moto.log" 2>&1 &
MOTO_PID=$!
export MOTO_PID
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
unset AWS_PROFILE AWS_SESSION_TOKEN
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('$AWS_ENDPOINT_URL/moto-api/', timeout=1)" 2>/dev/null; then
    echo "moto server on $AWS_ENDPOINT_URL (pid $MOTO_PID)"
    return 0 2>/dev/null || exit 0
  fi
  sleep 0.2
done
echo "moto server did not start; see target/moto.log" >&2
kill "$MOTO_PID" 2>/dev/null || true
return 1 2>/dev/null || exit 1
