#!/usr/bin/env bash
# The static checkers of deploy/ (test/deploy): Debian's docker-compose
# (`docker-compose config` validates deploy/compose.yaml without a Docker
# engine) and prometheus (its `promtool` checks the config and the alert rules
# and runs their unit tests). Idempotent and quiet: does nothing when both
# commands are there. Needs root (or sudo) to install; Debian 12.
set -euo pipefail
missing=()
command -v docker-compose > /dev/null || missing+=(docker-compose)
command -v promtool > /dev/null || missing+=(prometheus)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
echo "» installing the deploy/ checkers (apt-get install ${missing[*]})"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo > /dev/null; then SUDO=sudo; else
    echo "ops/ensure-deploy-tools.sh: ${missing[*]} missing and this is not root: run sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
else
  SUDO=
fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# The prometheus package must not start its server (port 9090): a
# policy-rc.d that refuses service starts, only for this install.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" > /dev/null
  $SUDO chmod 755 "$policy"
  trap '$SUDO rm -f "$policy"' EXIT
fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
for c in docker-compose promtool; do
  command -v "$c" > /dev/null || { echo "ops/ensure-deploy-tools.sh: apt-get ran but $c is missing" >&2; exit 1; }
done
