#!/usr/bin/env bash
# The test command (README, .ci/run): dependencies, build, lint, format check,
# local services (NATS/JetStream, Redis, ClickHouse from Debian packages,
# started like `qilin services up`, on free ports of their own when another
# stack holds the project ports), Debian's Chromium for the browser tests,
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
bash ops/ensure-deploy-tools.sh
echo "» local services"
# This checkout's services on the project ports, or, when another process
# (another checkout's stack) holds them, its own test stack on free ports.
exports="$(node dist/ops/test-services.js)"
eval "$exports"
echo "» tests"
rm -rf .tap/test-results
status=0
npx tap "$@" "dist/test/**/*.test.js" || status=$?
if [ "$status" -ne 0 ]; then
  # The coverage table ends tap's output; name the failures after it so a CI
  # log's tail says what failed.
  echo "» failed tests (from .tap/test-results)"
  grep -rn -B2 -A12 "^ *not ok" .tap/test-results | grep -v "^--$" | head -120 || true
  echo "» files with failures:"
  grep -rl "^ *not ok" .tap/test-results | sed 's|^.tap/test-results/||; s|\.tap$||' || true
fi
exit "$status"
