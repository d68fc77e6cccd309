#!/usr/bin/env bash
# Mutation testing of the modules that carry the rules (pyproject.toml [tool.mutmut]). Not in
# CI: it takes hours on 2 cores. `mutmut results` lists survivors, `mutmut show NAME` one of
# them; docs/testing.md has the last run's score and every survivor, killed or explained.
# Extra args go to `mutmut run` (e.g. a mutant name pattern to rerun some).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
.venv/bin/pip install -q --disable-pip-version-check mutmut==3.8.1
exec .venv/bin/mutmut run "$@"
