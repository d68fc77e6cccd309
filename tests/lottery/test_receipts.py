"""Join sequence numbers when a process dies mid-join: a join record left without its number,
or with its number taken and never written, is numbered by the draw so the list stays 1..P and
every receipt already handed out keeps its number."""
import asyncio
import logging
from datetime import timedelta

import pytest

from lottery import admission, clock, fairness, receipts
from lottery.errors import GiftOpened
from lottery.storage import joins, writes
from lottery.storage.connection import client_for, ensure_indexes
from tests.gifts import make_due, make_gift


@pytest.mark.gen_test
async def test_the_draw_numbers_a_join_that_lost_its_number_into_the_gap(db, gifts, drawer):
    order_id = (await make_gift(gifts, "timed", joiners=6, items=2))["_id"]
    lost = await db.joins.find_one({"order_id": order_id, "sequence": 3})
    # The process died after taking number 3 and before writing it onto the join.
    await db.joins.update_one({"_id": lost["_id"]}, {"$set": {"sequence": None}, "$unset": {"receipt": ""}})
    # Another died between the record and taking a number: the counter never reached 7.
    late = await gifts.accounts.ensure_member("o_late")
    await gifts.join(order_id, late)
    await db.joins.update_one({"order_id": order_id, "member_id": late}, {"$set": {"sequence": None}})
    await db.join_sequences.update_one({"_id": order_id}, {"$set": {"last": 6}})
    await make_due(db, order_id)
    draws = drawer()
    await draws.open([order_id])
    proof = await draws.proof(order_id)
    assert fairness.verify(proof, draws.beacon.chain) == []
    numbers = dict(zip(proof["participants"], proof["sequences"]))
    assert sorted(numbers.values()) == list(range(1, 8))
    assert {numbers[fairness.pseudonym(order_id, lost["member_id"])], numbers[fairness.pseudonym(order_id, late)]} \
        == {3, 7}
    # Their receipts are signed now, and every receipt agrees with the proof.
    held = [{"gift": order_id, "participant": fairness.pseudonym(order_id, j["member_id"]), "sequence": j["sequence"],
             "signature": j["receipt"]} async for j in db.joins.find({"order_id": order_id})]
    assert fairness.receipt_problems(proof, held, draws.receipt_key.public_hex()) == []
    assert await db.join_sequences.count_documents({"_id": order_id}) == 0  # the finished gift's counter is gone


async def stalled_join(db, gifts, monkeypatch) -> tuple[str, str, asyncio.Event, asyncio.Future]:
    """A timed gift with two joins and a third counted whose record waits for the event (a
    process stalled between its two writes), the gift due. Returns the order id, the third
    member, the event and the third join."""
    order_id = (await make_gift(gifts, "timed", joiners=2, items=1))["_id"]
    late = await gifts.accounts.ensure_member("o_late")
    counted, go = asyncio.Event(), asyncio.Event()
    insert_many = joins.insert_many

    async def slow_insert(db_, records):
        if any(record["member_id"] == late for record in records):
            counted.set()
            await go.wait()
        return await insert_many(db_, records)
    monkeypatch.setattr(joins, "insert_many", slow_insert)
    monkeypatch.setattr(admission, "LATE_RECORD", timedelta(0))  # every join looks
    joining = asyncio.ensure_future(gifts.join(order_id, late))
    await counted.wait()
    await make_due(db, order_id)
    return order_id, late, go, joining


@pytest.mark.gen_test(timeout=60)
async def test_a_timed_join_recorded_after_the_draw_froze_its_list_is_told_the_gift_opened_and_taken_back(
        db, gifts, drawer, monkeypatch):
    order_id, late, go, joining = await stalled_join(db, gifts, monkeypatch)
    draws = drawer(settle_timeout=0.2)  # it waits that long for the record, then draws without it
    assert await draws.open([order_id])
    go.set()
    with pytest.raises(GiftOpened):
        await joining
    proof = await draws.proof(order_id)
    assert fairness.verify(proof, draws.beacon.chain) == [] and len(proof["participants"]) == 2
    assert fairness.pseudonym(order_id, late) not in proof["participants"]
    assert await db.joins.count_documents({"order_id": order_id, "member_id": late}) == 0
    assert (await db.gifts.find_one({"_id": order_id}))["joined_count"] == 2


@pytest.mark.gen_test(timeout=60)
async def test_a_timed_join_recorded_late_but_while_the_draw_still_waited_for_it_is_drawn_and_answered_joined(
        db, gifts, drawer, monkeypatch):
    order_id, late, go, joining = await stalled_join(db, gifts, monkeypatch)
    draws = drawer(settle_timeout=10)
    opening = asyncio.ensure_future(draws.open([order_id]))
    await asyncio.sleep(0.3)  # the draw has taken the gift and waits for the third record
    go.set()
    await joining  # joined
    assert await opening
    proof = await draws.proof(order_id)
    assert fairness.pseudonym(order_id, late) in proof["participants"] and len(proof["participants"]) == 3
    assert await db.joins.count_documents({"order_id": order_id, "member_id": late}) == 1


@pytest.mark.gen_test
async def test_a_receipt_signed_by_another_key_or_changed_is_refused(gifts):
    order_id = (await make_gift(gifts, "timed", joiners=1))["_id"]
    member = await gifts.accounts.ensure_member("o_joiner0")
    _, me = await gifts.look(order_id, member)
    receipt, key = me["receipt"], gifts.admission.receipt_key.public_hex()
    assert receipt["sequence"] == 1 and receipts.verify(receipt, key)
    assert not receipts.verify({**receipt, "sequence": 2}, key)
    assert not receipts.verify({**receipt, "participant": "0" * 20}, key)
    assert not receipts.verify(receipt, "00" * 32)
    assert not receipts.verify({**receipt, "signature": "not base64!"}, key)


@pytest.mark.gen_test
async def test_a_sequence_number_is_one_joins_whoever_binds_it(db, gifts):
    # A join binding its number and a draw numbering the gaps may race (lottery/draw.py): the
    # database itself refuses a number its gift has given to another join.
    gift = await make_gift(gifts, "timed", joiners=2)
    first, second = [await gifts.accounts.ensure_member(f"o_joiner{i}") for i in range(2)]
    await db.joins.update_many({"order_id": gift["_id"]}, {"$set": {"sequence": None}})
    assert await joins.bind_sequence(db, gift["_id"], first, 7, "sig")
    assert not await joins.bind_sequence(db, gift["_id"], second, 7, "sig")
    assert not await joins.bind_sequences(db, gift["_id"], [(second, 7, "sig")])  # first's number
    assert not await joins.bind_sequences(db, gift["_id"], [(second, 8, "sig"), (first, 9, "sig")])  # first has one
    numbers = {j["member_id"]: j["sequence"] async for j in db.joins.find({"order_id": gift["_id"]})}
    assert numbers == {first: 7, second: 8}


@pytest.mark.gen_test
async def test_a_database_holding_a_number_given_twice_still_starts_and_says_so(engine_uri, db_name, caplog):
    # Written before the unique index (the race it closes): the index cannot be built, and the
    # process starts anyway, with one error naming what to do (docs/deploy.md).
    client = client_for(engine_uri)
    database = client[db_name]
    try:
        await database.joins.insert_many([{"_id": f"g:{m}", "order_id": "g", "member_id": m, "sequence": 1}
                                          for m in ("a", "b")])
        with caplog.at_level(logging.ERROR, logger="lottery.storage.joins"):
            await ensure_indexes(database)
        assert [r.getMessage() for r in caplog.records if "sequence number twice" in r.getMessage()]
        names = [index["name"] for index in await (await database.joins.list_indexes()).to_list()]
        assert "order_id_1_member_id_1" in names and "order_id_1_sequence_1" not in names
    finally:
        await client.drop_database(db_name)
        await client.close()


@pytest.mark.gen_test
async def test_many_joins_numbered_together_each_get_their_own_number_and_signature(db):
    # One update numbers up to SET_EACH_SLICE records, each picking its own from the update's lists.
    order_id = "0123456789abcdef0123abcd"
    members = [f"m{i:03d}" for i in range(2 * writes.SET_EACH_SLICE + 20)]
    await db.joins.insert_many([joins.new_join(order_id, m, clock.utcnow()) for m in members])
    numbered = [(m, i + 1, f"sig{i + 1}") for i, m in enumerate(reversed(members))]
    assert await joins.bind_sequences(db, order_id, numbered)
    bound = {j["member_id"]: (j["sequence"], j["receipt"]) async for j in db.joins.find({"order_id": order_id})}
    assert bound == {m: (n, signature) for m, n, signature in numbered}
