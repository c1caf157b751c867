#!/usr/bin/env bash
# Install npm dependencies when missing or stale, then compile. Shared by the
# README's two commands (ops/demo.sh, ops/test.sh) so both work on a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # `npm install` (from the lock file), not `npm ci`: chdb 3.4 lists optional
  # per-platform packages that are not on the registry (darwin, arm64), and
  # npm ci refuses a lock file without them; npm install skips them.
  echo "» installing npm packages (npm install from package-lock.json)"
  npm install --no-audit --no-fund
fi
echo "» compiling (tsc)"
npx tsc -p tsconfig.json
