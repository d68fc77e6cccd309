#!/usr/bin/env bash
# Install and start the server on the embedded database (data in ./data). Extra args go to server.py.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python server.py "$@"
