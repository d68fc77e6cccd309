#!/usr/bin/env bash
# Mutation testing of the modules that carry the rules (pyproject.toml [tool.mutmut]). Not in
# CI: it takes hours on 2 cores. `mutmut results` lists survivors, `mutmut show NAME` one of
# them; docs/testing.md has the last run's score and every survivor, killed or explained.
# Extra args go to `mutmut run` (e.g. a mutant name pattern to rerun some).
#
# `scripts/mutation.sh --money [PATTERN...]`: the money set instead ([tool.mutation.money]: the
# storage of orders, refunds, claims and products and the notify verification, judged by the
# fast domain tests), run in a copy of the tree, .mutation/money/; read its results there:
# `cd .mutation/money && ../../.venv/bin/mutmut results`. `--notify` likewise
# ([tool.mutation.notify], .mutation/notify/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
.venv/bin/pip install -q --disable-pip-version-check mutmut==3.8.1
if [ "${1:-}" = "--money" ] || [ "${1:-}" = "--notify" ]; then
  set_name=${1#--}
  shift
  copy=.mutation/$set_name
  mkdir -p "$copy"
  # The working tree as it is (tracked and new files, not ignored ones), over the last copy:
  # mutmut keeps its mutants/ and results there and regenerates what changed.
  git ls-files -co --exclude-standard -z | tar -cf - --null -T - | tar -xf - -C "$copy"
  .venv/bin/python - "$copy/pyproject.toml" "$set_name" <<'PY'
import sys, tomllib
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
money = tomllib.loads(text)["tool"]["mutation"][sys.argv[2]]
start = text.index("[tool.mutmut]")
end = text.index("\n[", start + 1) if "\n[" in text[start + 1:] else len(text)
table = "[tool.mutmut]\n" + "".join(f"{key} = {value!r}\n".replace("'", '"') for key, value in money.items())
open(path, "w", encoding="utf-8").write(text[:start] + table + text[end:])
PY
  cd "$copy"
  exec ../../.venv/bin/mutmut run "$@"
fi
exec .venv/bin/mutmut run "$@"
