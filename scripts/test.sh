#!/usr/bin/env bash
# Install everything the tests need and run the whole suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
# The browser tests (tests/pages) drive Debian's Chromium; a CJK font makes their screenshots
# readable. Never `playwright install`: it downloads a browser, which this network refuses.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
fc-list :lang=zh 2>/dev/null | grep -q . || missing+=(fonts-wqy-microhei)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo sudo)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
exec .venv/bin/python -m pytest "$@"
