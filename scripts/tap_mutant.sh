#!/usr/bin/env bash
# Shows that the one-member tap test catches a check-then-write join every time (issue 10):
# copies the checkout, turns each method's atomic "one join per member" into a read followed
# by a write (the seed's bug), and runs the tap test RUNS times per method on that copy.
# Prints how many runs caught it; docs/testing.md has the last result.
#   scripts/tap_mutant.sh [RUNS [METHODS]]   (default 20, "full direct timed")
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
methods=${2:-full direct timed}
repo=$(pwd)
test=tests/handlers/test_join_races.py::test_fifty_simultaneous_taps_by_one_member_make_one_join
# The control: the real code passes, so a failure below is the mutant's.
.venv/bin/python -m pytest -q -p no:cacheprovider "$test" >/dev/null
copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
tar --exclude=./.venv --exclude=./data --exclude=./mutants -cf - . | tar -C "$copy" -xf -
.venv/bin/python - "$copy" <<'EOF'
import pathlib, sys
root = pathlib.Path(sys.argv[1])

def patch(path, old, new, count=1):
    file = root / path
    text = file.read_text()
    assert text.count(old) == count, (path, old)
    file.write_text(text.replace(old, new))

# The claim no longer refuses a member already among the claimants, and a direct gift's claim
# takes any item left instead of the one it read (the seed's claim)...
patch("lottery/storage/gifts.py", 'rules.update(items_left=gift["items_left"], claimants={"$ne": member_id}, ',
      'rules.update(items_left={"$gt": 0}, ')
patch("lottery/storage/gifts.py", 'rules.update(seats_left={"$gt": 0}, claimants={"$ne": member_id}, ',
      'rules.update(seats_left={"$gt": 0}, ')
# ...the join record is no longer unique per (gift, member)...
patch("lottery/storage/joins.py", '("member_id", ASCENDING)], unique=True)', '("member_id", ASCENDING)])')
patch("lottery/storage/joins.py", 'return f"{order_id}:{member_id}"', 'return f"{order_id}:{member_id}:{uuid.uuid4().hex}"')
patch("lottery/storage/joins.py", 'return await db.joins.find_one({"_id": join_id(order_id, member_id)})',
      'return await db.joins.find_one({"order_id": order_id, "member_id": member_id})')
patch("lottery/storage/joins.py", '\n\ndef join_id', '\nimport uuid\n\n\ndef join_id')
# ...and the join checks first, then writes.
patch("lottery/gifts.py", '        now, order_id = clock.utcnow(), gift["_id"]\n',
      '        now, order_id = clock.utcnow(), gift["_id"]\n'
      '        if await joins.get(self.db, order_id, member_id) is not None or member_id in (\n'
      '                (await store.get(self.db, order_id)).get("claimants") or []):\n'
      '            raise AlreadyJoined()\n')
EOF
summary=()
for method in $methods; do
  caught=0
  for _ in $(seq "$runs"); do
    if ! (cd "$copy" && "$repo/.venv/bin/python" -m pytest -q -p no:cacheprovider "$test[$method]" >/dev/null 2>&1); then
      caught=$((caught + 1))
    fi
  done
  echo "$method: check-then-write caught in $caught of $runs runs"
  summary+=("\"$method\": $caught")
done
echo "{\"runs\": $runs, $(IFS=,; echo "${summary[*]}")}"
