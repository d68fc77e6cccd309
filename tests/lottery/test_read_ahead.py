"""A big timed gift's records read before its open time: its draw reads only what came after,
and still draws among exactly the gift's participants, each with the number their join took."""
import asyncio
import logging
from datetime import timedelta

import pytest

from lottery import clock, fairness, read_ahead
from lottery.errors import LotteryError
from lottery.storage import joins
from tests.gifts import make_due, make_gift

WHOLE = "reading them whole"  # the draw's warning when the early list falls short of the count


async def joined_an_hour_ago(db, order_id: str) -> None:
    """The gift's joins so far made long before its records are read (the draw reads again
    what was made shortly before)."""
    await db.joins.update_many({"order_id": order_id}, {"$set": {"joined_at": clock.utcnow() - timedelta(hours=1)}})


async def member_of(gifts, openid: str) -> str:
    return await gifts.accounts.ensure_member(openid)


async def numbered(db, order_id: str) -> dict[str, int]:
    """pseudonym -> sequence number, as the join records hold them."""
    return {fairness.pseudonym(order_id, j["member_id"]): j["sequence"]
            async for j in db.joins.find({"order_id": order_id})}


async def drawn_list(draws, order_id: str) -> dict[str, int]:
    """pseudonym -> sequence number, as the draw's proof froze them."""
    proof = await draws.proof(order_id)
    assert fairness.verify(proof, draws.beacon.chain) == []
    return dict(zip(proof["participants"], proof["sequences"]))


@pytest.mark.gen_test(timeout=60)
async def test_a_draw_takes_the_records_read_ahead_those_made_after_and_numbers_bound_meanwhile(
        db, gifts, drawer, caplog):
    gift = await make_gift(gifts, "timed", joiners=6, items=2, open_at=clock.utcnow() + timedelta(hours=1))
    order_id = gift["_id"]
    await joined_an_hour_ago(db, order_id)
    # One join wrote its record but not yet its number when the records are read.
    late_number = await member_of(gifts, "o_joiner5")
    its_number = (await joins.get(db, order_id, late_number))["sequence"]
    await db.joins.update_one({"_id": joins.join_id(order_id, late_number)}, {"$set": {"sequence": None}})
    draws = drawer(read_ahead_at_least=6)
    assert await draws.read_ahead.read(order_id)
    await db.joins.update_one({"_id": joins.join_id(order_id, late_number)}, {"$set": {"sequence": its_number}})
    for i in range(3):  # joins after the read
        await gifts.join(order_id, await member_of(gifts, f"o_after{i}"))
    await make_due(db, order_id)
    with caplog.at_level(logging.INFO, logger="lottery.draw"):
        assert await draws.open([order_id]) == [order_id]
    said = [r.getMessage() for r in caplog.records]
    assert any("from their records read ahead" in line for line in said)
    assert not [line for line in said if WHOLE in line]  # the early list served
    assert await drawn_list(draws, order_id) == await numbered(db, order_id)  # all nine, numbers unchanged
    assert len(await numbered(db, order_id)) == 9
    assert draws.read_ahead.take([order_id]) == {}  # used once


@pytest.mark.gen_test(timeout=60)
async def test_a_record_written_late_with_an_early_time_is_caught_by_the_count(db, gifts, drawer, caplog):
    gift = await make_gift(gifts, "timed", joiners=6, items=2, open_at=clock.utcnow() + timedelta(hours=1))
    order_id = gift["_id"]
    await joined_an_hour_ago(db, order_id)
    draws = drawer(read_ahead_at_least=6)
    assert await draws.read_ahead.read(order_id)
    # A join counted before the read whose record lands after it, stamped with its step's time.
    late = await member_of(gifts, "o_late")
    await gifts.join(order_id, late)
    await db.joins.update_one({"_id": joins.join_id(order_id, late)},
                              {"$set": {"joined_at": clock.utcnow() - timedelta(minutes=5)}})
    await make_due(db, order_id)
    with caplog.at_level(logging.INFO, logger="lottery.draw"):
        assert await draws.open([order_id]) == [order_id]
    assert [r for r in caplog.records if WHOLE in r.getMessage()]
    drawn = await drawn_list(draws, order_id)
    assert fairness.pseudonym(order_id, late) in drawn
    assert drawn == await numbered(db, order_id) and len(drawn) == 7


@pytest.mark.gen_test(timeout=60)
async def test_only_an_open_timed_gift_of_at_least_the_threshold_is_read_ahead(db, gifts, drawer):
    draws = drawer(read_ahead_at_least=3)
    later = {"open_at": clock.utcnow() + timedelta(hours=1)}
    small = await make_gift(gifts, "timed", joiners=2, **later)
    full = await make_gift(gifts, "full", joiners=3)
    big = await make_gift(gifts, "timed", joiners=3, **later)
    assert not await draws.read_ahead.read(small["_id"])
    assert not await draws.read_ahead.read(full["_id"])
    assert not await draws.read_ahead.read("0" * 24)
    assert await draws.read_ahead.read(big["_id"])
    assert list(draws.read_ahead.take([small["_id"], full["_id"], big["_id"]])) == [big["_id"]]


@pytest.mark.gen_test(timeout=60)
async def test_a_list_no_draw_here_took_is_dropped_by_a_later_sweep(db, gifts, drawer, monkeypatch):
    gift = await make_gift(gifts, "timed", joiners=3, open_at=clock.utcnow() + timedelta(hours=1))
    draws = drawer(read_ahead_at_least=3)
    assert await draws.read_ahead.read(gift["_id"])
    await draws.sweep()  # soon after: kept
    assert list(draws.read_ahead.take([gift["_id"]])) == [gift["_id"]]
    assert await draws.read_ahead.read(gift["_id"])
    later = clock.utcnow() + read_ahead.KEEP + timedelta(seconds=1)
    monkeypatch.setattr(clock, "utcnow", lambda: later)
    await draws.sweep()
    assert draws.read_ahead.take([gift["_id"]]) == {}


@pytest.mark.gen_test(timeout=90)
async def test_joins_racing_a_draw_from_an_early_list_are_each_drawn_once_or_told_it_opened(db, gifts, drawer):
    gift = await make_gift(gifts, "timed", joiners=20, items=5, open_at=clock.utcnow() + timedelta(hours=1))
    order_id = gift["_id"]
    await joined_an_hour_ago(db, order_id)
    draws = drawer(read_ahead_at_least=20)
    assert await draws.read_ahead.read(order_id)
    racers = [await member_of(gifts, f"o_racer{i}") for i in range(60)]

    async def join(member_id: str) -> tuple[str, bool]:
        try:
            await gifts.join(order_id, member_id)
        except LotteryError:  # 已经开奖: too late
            return member_id, False
        return member_id, True

    async def draw() -> list[str]:
        await asyncio.sleep(0.05)  # some of the joins first
        await make_due(db, order_id)
        return await draws.open([order_id])

    *answers, opened = await asyncio.gather(*(join(m) for m in racers), draw())
    assert opened == [order_id]
    drawn = await drawn_list(draws, order_id)  # the proof verifies
    assert drawn == await numbered(db, order_id)  # exactly the records that remain, with their numbers
    joined = {fairness.pseudonym(order_id, m) for m, ok in answers if ok}
    refused = {fairness.pseudonym(order_id, m) for m, ok in answers if not ok}
    assert joined <= drawn.keys() and not refused & drawn.keys()
    assert len(drawn) == 20 + len(joined)
    assert (await db.gifts.find_one({"_id": order_id}))["joined_count"] == len(drawn)
