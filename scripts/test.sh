#!/usr/bin/env bash
# Install everything the tests need and run the whole suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# Three installs at once, as they wait on different things (pip on PyPI, apt on Debian's mirror
# and dpkg, npm on its registry): the Python packages, the system packages below, and the
# mini-program's node_modules. The apt install is awaited before pytest starts.
scripts/setup.sh test &
pip_pid=$!
system_packages() {
  # The browser tests (tests/pages) drive Debian's Chromium; a CJK font makes their screenshots
  # readable. Never `playwright install`: it downloads a browser, which this network refuses.
  # tests/deploy runs Debian's nginx in front of several server processes, on free loopback ports.
  local missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  fc-list :lang=zh 2>/dev/null | grep -q . || missing+=(fonts-wqy-microhei)
  [ -x /usr/sbin/nginx ] || missing+=(nginx)
  [ ${#missing[@]} -gt 0 ] || return 0
  local SUDO
  SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo sudo)
  # The nginx package starts a system nginx on port 80 unless policy-rc.d says no: the tests
  # need none (they run their own on free loopback ports), so installing never starts one.
  # Container images usually ship that guard; where it is missing, it is there for the install.
  local guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$guard" >/dev/null
    $SUDO chmod +x "$guard"
  fi
  local status=0
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" || status=$?
  [ -z "$guard" ] || $SUDO rm -f "$guard"
  return $status
}
system_packages &
apt_pid=$!
if [ "${MINIPROGRAM_TESTS:-1}" != "0" ]; then
  (cd miniprogram/test && npm ci --no-audit --no-fund --loglevel=error) &
  npm_pid=$!
fi
wait "$pip_pid"
wait "$apt_pid"
[ -z "${npm_pid:-}" ] || wait "$npm_pid"
# Both suites at once: pytest's files spread over 4 workers (most tests wait on sockets, timers
# and child processes rather than the CPU: 4 outrun 3 on a 2-core machine, docs/testing.md), and the
# mini-program's suite (miniprogram/): its JS type-checked against the wx API's types, then its
# pages rendered by jest + miniprogram-simulate against a real server, packages from the committed
# lock file. MINIPROGRAM_TESTS=0 skips it, say for a quick pytest subset; PYTEST_WORKERS=0 runs
# pytest in one process.
status=0
js_status=0
js_log=$(mktemp)
if [ "${MINIPROGRAM_TESTS:-1}" != "0" ]; then
  (cd miniprogram/test && npx tsc -p . && npx tsc -p tsconfig.test.json \
    && PYTHON="$PWD/../../.venv/bin/python" npx jest --ci) >"$js_log" 2>&1 &
  js_pid=$!
fi
py_log=$(mktemp)
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-4}" --dist worksteal "$@" 2>&1 | tee "$py_log" || status=$?
if [ -n "${js_pid:-}" ]; then
  wait "$js_pid" || js_status=$?
  echo; echo "== mini-program (miniprogram/test) =="; cat "$js_log"
fi
# One closing line for both suites.
count() {  # count WORD FILE: the number before WORD on the file's last line that has one
  grep -oE "[0-9]+ $1" "$2" | tail -1 | awk '{print $1}' | grep . || echo 0
}
py_passed=$(count passed "$py_log"); py_failed=$(( $(count failed "$py_log") + $(count "errors?" "$py_log") ))
js_passed=$(count passed "$js_log"); js_failed=$(count failed "$js_log")
rm -f "$js_log" "$py_log"
[ "$status" -ne 0 ] || [ "$js_status" -eq 0 ] || status=$js_status
[ "$status" -eq 0 ] || [ "$((py_failed + js_failed))" -gt 0 ] || py_failed=1  # a crash counts
echo "all: $((py_passed + js_passed)) passed, $((py_failed + js_failed)) failed"
exit "$status"
