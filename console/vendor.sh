#!/usr/bin/env bash
# Refreshes the console's vendored libraries (console/app/vendor) from the
# npm registry: Preact (MIT) and htm (Apache-2.0), with their licences.
# Only for updating them: building and running hookrun needs no Node.js.
# Usage: console/vendor.sh   (needs npm; versions pinned below)
set -euo pipefail
cd "$(dirname "$0")"
PREACT=11.2.0
HTM=3.1.1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "preact@$PREACT" "htm@$HTM" > /dev/null)
mkdir -p "$tmp/preact" "$tmp/htm"
tar xzf "$tmp/preact-$PREACT.tgz" -C "$tmp/preact"
tar xzf "$tmp/htm-$HTM.tgz" -C "$tmp/htm"
out=app/vendor
# The source-map comments go (the maps are not shipped); hooks import
# Preact by a relative path, since a bare "preact" would need an import
# map, which is an inline script the page's policy forbids.
sed '/sourceMappingURL/d' "$tmp/preact/package/dist/preact.mjs" > "$out/preact.js"
sed -e '/sourceMappingURL/d' -e 's/from"preact"/from".\/preact.js"/g' \
  "$tmp/preact/package/hooks/dist/hooks.mjs" > "$out/hooks.js"
sed '/sourceMappingURL/d' "$tmp/htm/package/dist/htm.module.js" > "$out/htm.js"
cp "$tmp/preact/package/LICENSE" "$out/LICENSE-preact.txt"
cp "$tmp/htm/package/LICENSE" "$out/LICENSE-htm.txt"
if grep -q 'from"preact"' "$out/hooks.js"; then
  echo "hooks.js still imports a bare \"preact\"" >&2
  exit 1
fi
echo "preact $PREACT, htm $HTM vendored into console/$out"
