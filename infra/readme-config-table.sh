#!/usr/bin/env bash
# Rewrites the README's configuration table from shared/src/config/vars.rs
# (the unit test `the_readme_lists_every_variable` prints it when they differ).
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(cargo test -q -p hookrun-core --lib the_readme_lists_every_variable 2>&1 || true)"
table="$(printf '%s\n' "$out" | sed -n '/it should read:/,/^$/p' | sed '1d')"
if [ -z "$table" ]; then echo "README table is current"; exit 0; fi
TABLE="$table" python3 - <<'PY'
import os, re
s = open("README.md").read()
start = s.index("| variable | default | allowed | meaning |")
end = s.index("\n\n", start) + 1
s = s[:start] + os.environ["TABLE"].rstrip("\n") + "\n" + s[end:]
open("README.md", "w").write(s)
PY
echo "README table rewritten"
