"""Join receipts: every accepted join of a drawn gift gets a number in its gift, 1, 2, 3 ...
with none skipped or repeated however the joins race, signed with the server's published key;
the proof lists every participant under that number, and a receipt shows a join left out."""
import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from lottery import fairness, receipts
from tests import beacons
from tests.handlers.test_join_races import logins
from tests.waiting import until


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("method", ["full", "timed"])
async def test_racing_joins_get_numbers_1_to_n_each_once_signed_and_the_proof_lists_them(api, db, method):
    """16 joins at once (every joiner sees the last seats, so the full gift opens without a
    scheduler): the numbers 1..16, each once; the proof lists each receipt's participant under
    its number."""
    open_at = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    order_id = await api.create_gift(method=method, open_number=16, open_at=open_at,
                                     items=[{"name": "A"}, {"name": "B"}])
    keys = await logins(api, f"numbered-{method}", 16)
    answers = await asyncio.gather(*(api.join(k, order_id) for k in keys))
    assert {status for status, _ in answers} == {200}
    held = [answer["me"]["receipt"] for _, answer in answers]
    assert sorted(r["sequence"] for r in held) == list(range(1, 17))
    status, key = await api.request("GET", "/api/v1/receipt-key")
    assert status == 200 and key["algorithm"] == "ed25519"
    assert all(receipts.verify(r, key["public_key"]) for r in held)
    # A member who reads the gift again gets the same receipt; a duplicate join takes no number.
    status, again = await api.gift(keys[0], order_id)
    assert again["me"]["receipt"] == held[0]
    status, duplicate = await api.join(keys[0], order_id)
    assert status == 409 and duplicate["error"]["code"] == "already_joined"
    if method == "timed":
        return  # opens in an hour; the full gift, drawn at its last seat, shows the proof's side
    status, proof = await until(lambda: proof_of(api, order_id), timeout=60)
    assert fairness.verify(proof, beacons.chain()) == []
    assert fairness.receipt_problems(proof, held, key["public_key"]) == []
    # Leaving the first joiner out, even renumbering the rest to close the gap, shows against
    # their receipt, and against every renumbered one.
    first = next(r for r in held if r["sequence"] == 1)
    at = proof["participants"].index(first["participant"])
    left_out = {**proof, "participants": proof["participants"][:at] + proof["participants"][at + 1:],
                "sequences": [n - 1 for i, n in enumerate(proof["sequences"]) if i != at]}
    assert fairness.verify(left_out, beacons.chain()) != []  # its hash no longer matches, too
    problems = fairness.receipt_problems(left_out, held, key["public_key"])
    assert f"receipt 1 of {first['participant']}: the participant was left out of the draw" in problems
    assert len(problems) == 16  # the first left out, the 15 others listed under other numbers
    forged = {**held[0], "sequence": held[0]["sequence"] + 100}
    assert fairness.receipt_problems(proof, [forged], key["public_key"]) == [
        f"receipt {forged['sequence']} of {forged['participant']}: not signed by the receipt key"]


async def proof_of(api, order_id: str):
    status, proof = await api.request("GET", f"/api/v1/gifts/{order_id}/proof")
    return (status, proof) if status == 200 else None
