#!/usr/bin/env bash
# Debian's Chromium for the browser tests (test/browser, through playwright-core,
# which downloads no browser of its own). Idempotent: does nothing when
# QILIN_CHROMIUM or /usr/bin/chromium is there. Needs root (or sudo) to install.
set -euo pipefail
chromium="${QILIN_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$chromium" ]; then
  exit 0
fi
echo "» installing Chromium for the browser tests (apt-get install chromium)"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo > /dev/null; then SUDO=sudo; else
    echo "ops/ensure-browser.sh: $chromium is missing and this is not root: run sudo apt-get install -y chromium" >&2
    exit 1
  fi
else
  SUDO=
fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
[ -x "$chromium" ] || { echo "ops/ensure-browser.sh: apt-get installed chromium but $chromium is missing" >&2; exit 1; }
