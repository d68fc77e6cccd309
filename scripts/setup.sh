#!/usr/bin/env bash
# Create .venv and install the pinned dependencies (idempotent). Usage: scripts/setup.sh [test]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
if [ "${1:-}" = "test" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-test.txt
else
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
fi
