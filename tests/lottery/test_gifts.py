"""Gift rules in the domain, against the real database, without HTTP."""
from datetime import timedelta

import pytest

from lottery import clock
from lottery.errors import (AlreadyJoined, GiftClosed, GiftFull, GiftNotFound, InvalidInput, MissingParams,
                            NoItemsLeft, OwnGift)
from lottery.admission import NUDGE_SEATS
from lottery.gifts import Gifts, admission_state, member_view
from tests.gifts import spec


async def member(gifts: Gifts, name: str) -> str:
    return await gifts.accounts.ensure_member("o_" + name)


@pytest.mark.gen_test
async def test_a_full_gift_becomes_ready_with_its_last_seat_and_its_last_joiners_tell_the_draw(gifts, db):
    told = []
    gifts.admission.on_ready = told.append
    seats = NUDGE_SEATS + 2
    gift = await gifts.create(spec("full", ["A"], open_number=seats))
    for i in range(seats):
        joined = await gifts.join(gift["_id"], await member(gifts, f"m{i}"))
        # Only joiners who saw few enough seats left (one of whom took the last) tell the draw.
        assert len(told) == max(0, i + 1 - (seats - NUDGE_SEATS))
    assert joined.gift["status"] == "ready"
    assert (await db.gifts.find_one({"_id": gift["_id"]}))["status"] == "ready"
    with pytest.raises(GiftFull):
        await gifts.join(gift["_id"], await member(gifts, "late"))


@pytest.mark.gen_test
async def test_direct_items_go_out_in_order_then_the_gift_finishes(gifts):
    gift = await gifts.create(spec("direct", ["A", "B"]))
    a = await gifts.join(gift["_id"], await member(gifts, "a"))
    b = await gifts.join(gift["_id"], await member(gifts, "b"))
    assert (a.item["name"], b.item["name"]) == ("A", "B")
    assert b.gift["status"] == "finished"
    with pytest.raises(NoItemsLeft):
        await gifts.join(gift["_id"], await member(gifts, "c"))
    with pytest.raises(AlreadyJoined):
        await gifts.join(gift["_id"], await member(gifts, "a"))


@pytest.mark.gen_test
async def test_refusals_name_their_reason(gifts, db):
    timed = await gifts.create(spec("timed", ["A"], sender="o_s"))
    with pytest.raises(OwnGift):
        await gifts.join(timed["_id"], await member(gifts, "s"))
    with pytest.raises(GiftNotFound):
        await gifts.join("000000000000000000000000", await member(gifts, "a"))
    await db.gifts.update_one({"_id": timed["_id"]}, {"$set": {"open_at": clock.utcnow()}})
    with pytest.raises(GiftClosed):
        await gifts.join(timed["_id"], await member(gifts, "a"))
    await db.gifts.update_one({"_id": timed["_id"]}, {"$set": {"paid": False}})
    with pytest.raises(GiftNotFound):
        await gifts.look(timed["_id"], await member(gifts, "a"))


def test_member_view_gives_exactly_one_state():
    now = clock.utcnow()
    gift = {"sender_id": "s", "status": "open", "method": "timed", "open_at": now + timedelta(seconds=1),
            "items": [{"name": "A"}], "items_left": 1, "seats_left": 0}
    join = {"joined_at": now, "outcome": None, "item_index": None}
    assert member_view(gift, None, "s", now) == {"state": "own_gift"}
    assert member_view(gift, None, "m", now) == {"state": "can_join"}
    assert member_view(gift, join, "m", now)["state"] == "joined_waiting"
    # A drawn gift's result is its draw.winners, whether or not the join has its outcome yet.
    drawn = {**gift, "_id": "g", "status": "finished", "draw": {"winners": ["w"]}}
    assert member_view(drawn, join, "m", now)["state"] == "lost"
    won = member_view(drawn, join, "w", now)
    assert won["state"] == "won" and won["item"] == {"name": "A", "image": ""}
    # A direct gift's join holds its item from the start.
    direct = {**gift, "method": "direct"}
    received = member_view(direct, {**join, "outcome": "won", "item_index": 0}, "m", now)
    assert received["state"] == "won" and received["item"] == {"name": "A", "image": ""}
    assert admission_state({**gift, "open_at": now}, now) == "closed"
    assert admission_state({**gift, "status": "finished"}, now) == "closed"
    assert admission_state({**gift, "method": "full", "seats_left": 0}, now) == "full"
    assert admission_state({**gift, "method": "full", "status": "ready"}, now) == "full"
    assert admission_state({**gift, "method": "direct", "items_left": 0}, now) == "closed"


@pytest.mark.gen_test
@pytest.mark.parametrize("bad, error", [
    (dict(method="lucky"), InvalidInput),
    (dict(items=[]), InvalidInput),
    (dict(items=1001), InvalidInput),
    (dict(method="full"), MissingParams),
    (dict(method="full", open_number=0), InvalidInput),
    (dict(method="full", open_number=10001), InvalidInput),
    (dict(method="full", open_number=3, deadline_hours=24 * 30 + 1), InvalidInput),
    (dict(open_at=None), MissingParams),
    (dict(open_at=clock.utcnow() - timedelta(seconds=1)), InvalidInput),
    (dict(open_at=clock.utcnow() + timedelta(days=367)), InvalidInput),
])
async def test_a_gift_that_breaks_a_rule_is_refused_and_not_stored(gifts, db, bad, error):
    fields = {"method": "timed", "items": 2, **bad}
    with pytest.raises(error):
        await gifts.create(spec(fields.pop("method"), fields.pop("items"), **fields))
    assert await db.gifts.count_documents({}) == 0
