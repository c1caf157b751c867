#!/usr/bin/env bash
# The main job (README): dependencies, build, then `qilin demo` (services up,
# simulated market, kernel, live signals over the WebSocket).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/ensure-deps.sh
exec node bin/qilin.js demo "$@"
