#!/usr/bin/env bash
# Install everything the tests need and run the whole suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
# The browser tests (tests/pages) drive Debian's Chromium; a CJK font makes their screenshots
# readable. Never `playwright install`: it downloads a browser, which this network refuses.
# tests/deploy runs Debian's nginx in front of several server processes, on free loopback ports.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
fc-list :lang=zh 2>/dev/null | grep -q . || missing+=(fonts-wqy-microhei)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo sudo)
  # The nginx package starts a system nginx on port 80 unless policy-rc.d says no: the tests
  # need none (they run their own on free loopback ports), so installing never starts one.
  # Container images usually ship that guard; where it is missing, it is there for the install.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$guard" >/dev/null
    $SUDO chmod +x "$guard"
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
  if [ -n "$guard" ]; then
    $SUDO rm -f "$guard"
    trap - EXIT
  fi
fi
status=0
.venv/bin/python -m pytest "$@" || status=$?
# The mini-program (miniprogram/): its JS type-checked against the wx API's types, then its pages
# rendered by jest + miniprogram-simulate against a real server (about a minute; packages from
# the committed lock file). MINIPROGRAM_TESTS=0 skips it, say for a quick pytest subset.
if [ "${MINIPROGRAM_TESTS:-1}" != "0" ]; then
  (cd miniprogram/test && npm ci --no-audit --no-fund --loglevel=error && npx tsc -p . && npx tsc -p tsconfig.test.json \
    && PYTHON="$PWD/../../.venv/bin/python" npx jest --ci) || status=$((status ? status : 1))
fi
exit "$status"
