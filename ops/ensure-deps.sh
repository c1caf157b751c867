#!/usr/bin/env bash
# Install npm dependencies when missing or stale, then compile. Shared by the
# README's two commands (ops/demo.sh, ops/test.sh) so both work on a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # `npm ci`: exactly the lock file. chdb 3.4 lists optional per-platform
  # packages that are not on the registry (darwin, linux-arm64); package.json
  # `overrides` maps them to an empty package so the lock is complete.
  echo "» installing npm packages (npm ci from package-lock.json)"
  npm ci --no-audit --no-fund
fi
echo "» compiling (tsc)"
npx tsc -p tsconfig.json
npx tsc -p dashboard/tsconfig.json
