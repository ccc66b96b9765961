#!/usr/bin/env bash
# The web console's size as a browser loads it: every file it fetches on
# its first visit (the page, its modules, styles and icon: all of
# console/app but the licence texts), raw and gzipped (gzip -9, as
# `hookrun serve` and CloudFront compress them), per file and in all.
# Usage: ./infra/console-size.sh
set -euo pipefail
cd "$(dirname "$0")/../console/app"
raw=0
gz=0
printf '%-28s %9s %9s\n' file bytes gzipped
while IFS= read -r f; do
  r=$(wc -c < "$f")
  g=$(gzip -9c "$f" | wc -c)
  raw=$((raw + r))
  gz=$((gz + g))
  printf '%-28s %9d %9d\n' "$f" "$r" "$g"
done < <(find . -type f ! -name 'LICENSE*' | sed 's|^\./||' | sort)
printf '%-28s %9d %9d\n' total "$raw" "$gz"
