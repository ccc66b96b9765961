#!/usr/bin/env bash
# One HTTP and TLS stack in every binary: reqwest (one version) over rustls
# with ring; no aws-lc-sys, OpenSSL or native-tls anywhere (the AWS SDK's
# default TLS would bring aws-lc-sys and a second HTTP client). Reads
# Cargo.lock only: it builds nothing.
#   ./infra/tls-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bins=(hookrun hookrun-api hookrun-delivery hookrun-executor hookrun-ingress hookrun-realtime hookrun-relay)
failed=0
for bin in "${bins[@]}"; do
  deps=$(cargo tree --locked -p "$bin" -e normal --prefix none | sed 's/ (\*)$//' | sort -u)
  bad=$(grep -E '^(aws-lc-sys|aws-lc-rs|openssl-sys|openssl|native-tls|hyper-tls) ' <<<"$deps" || true)
  reqwests=$(grep -c '^reqwest ' <<<"$deps" || true)
  rings=$(grep -c '^ring ' <<<"$deps" || true)
  if [ -n "$bad" ] || [ "$reqwests" -ne 1 ] || [ "$rings" -ne 1 ]; then
    echo "$bin: a second HTTP or TLS stack:" >&2
    echo "${bad:-(none of the banned crates)}; reqwest versions: $reqwests; ring versions: $rings" >&2
    failed=1
  fi
done
[ "$failed" -eq 0 ] && echo "one HTTP and TLS stack (reqwest, rustls, ring) in ${#bins[@]} binaries"
exit "$failed"
