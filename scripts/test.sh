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
exec .venv/bin/python -m pytest "$@"
