#!/usr/bin/env bash
# The test command (README, .ci/run): dependencies, build, lint, format check,
# local services (NATS/JetStream, Redis, ClickHouse from Debian packages,
# started by `qilin services up`), Debian's Chromium for the browser tests,
# then every tap test from dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/ensure-deps.sh
echo "» lint (typescript-eslint, type-aware, zero warnings)"
npx eslint --max-warnings 0 .
echo "» format check (prettier)"
npx prettier --check . > /dev/null || { npx prettier --check .; exit 1; }
echo "» Chromium for the browser tests"
bash ops/ensure-browser.sh
echo "» local services"
eval "$(node bin/qilin.js services up)"
echo "» tests"
npx tap "$@" "dist/test/**/*.test.js"
