"""The draw: everyone ends with an outcome, once, whoever races and whatever stalls."""
import asyncio
from datetime import timedelta

import pytest

from lottery import clock, fairness
from lottery.accounts import Accounts
from lottery.draw import Draws
from lottery.errors import Forbidden, GiftOpened, NotOpenable
from lottery.gifts import Gifts
from tests.stalling import stalling_draws


@pytest.fixture
def gifts(db) -> Gifts:
    return Gifts(db, Accounts(db, None))


@pytest.fixture
def drawer(db, io_loop):
    """Makes Draws on the test database; their background work ends with the test."""
    made = []

    def make(stall: str | None = None, **kwargs) -> Draws:
        made.append((stalling_draws(stall) if stall else Draws)(db, **kwargs))
        return made[-1]

    yield make
    for draws in made:
        io_loop.run_sync(lambda: draws.idle(timeout=5))


async def make_gift(gifts: Gifts, method: str, joiners: int, items: int = 3, **extra) -> str:
    body = {"sender_openid": "o_sender", "method": method,
            "items": [{"name": f"item{i}"} for i in range(items)], **extra}
    if method == "full":
        body.setdefault("open_number", max(joiners, 1) + 100)
    if method == "timed":
        body.setdefault("open_at", (clock.utcnow() + timedelta(hours=1)).isoformat())
    gift = await gifts.create(body)
    for i in range(joiners):
        await gifts.join(gift["_id"], await gifts.accounts.ensure_member(f"o_joiner{i}"))
    return gift["_id"]


async def make_due(db, order_id: str) -> None:
    """Bring the gift's open time (or deadline) to now."""
    now = clock.utcnow()
    await db.gifts.update_one({"_id": order_id}, {"$set": {"open_at": now, "deadline_at": now, "due_at": now}})


async def until_past(moment) -> None:
    """Wait until the clock has passed `moment` (a lease's end, say)."""
    while clock.utcnow() <= clock.as_utc(moment):
        await asyncio.sleep(0.02)


async def outcomes(db, order_id: str) -> dict[str, list]:
    joins = await db.joins.find({"order_id": order_id}).to_list()
    return {"won": sorted(j["item_index"] for j in joins if j["outcome"] == "won"),
            "lost": [j for j in joins if j["outcome"] == "lost"],
            "none": [j for j in joins if j["outcome"] is None]}


@pytest.mark.gen_test
async def test_a_timed_gift_draws_min_items_participants_and_returns_the_rest(db, gifts, drawer):
    order_id = await make_gift(gifts, "timed", joiners=2, items=3)
    await make_due(db, order_id)
    draws = drawer()
    assert await draws.open_due() == 1
    gift = await db.gifts.find_one({"_id": order_id})
    assert gift["status"] == "finished" and gift["draw"]["returned"] == [2]
    assert len(gift["draw"]["winners"]) == 2  # the result, committed with the finish
    await draws.idle()  # then copied onto the joins
    result = await outcomes(db, order_id)
    assert result["won"] == [0, 1] and result["lost"] == [] and result["none"] == []
    assert await db.outbox.find_one({"_id": f"opened:{order_id}"}) is not None


@pytest.mark.gen_test
async def test_every_participant_ends_with_won_or_lost(db, gifts, drawer):
    order_id = await make_gift(gifts, "timed", joiners=12, items=4)
    await make_due(db, order_id)
    draws = drawer()
    await draws.open(order_id)
    await draws.idle()  # outcomes are copied onto the joins just after the result
    result = await outcomes(db, order_id)
    assert result["won"] == [0, 1, 2, 3] and len(result["lost"]) == 8 and result["none"] == []


@pytest.mark.gen_test
async def test_the_proof_recomputes(db, gifts, drawer):
    order_id = await make_gift(gifts, "timed", joiners=7, items=2)
    await make_due(db, order_id)
    draws = drawer()
    await draws.open(order_id)
    proof = await draws.proof(order_id)
    assert fairness.verify(proof) == []
    assert len(proof["participants"]) == 7 and "winner_member_ids" not in proof
    gift = await db.gifts.find_one({"_id": order_id})
    assert proof["seed_commitment"] == gift["seed_commitment"]


@pytest.mark.gen_test
async def test_no_participants_finishes_with_every_item_returned(db, gifts, drawer):
    order_id = await make_gift(gifts, "timed", joiners=0, items=3)
    await make_due(db, order_id)
    assert await drawer().open(order_id)
    gift = await db.gifts.find_one({"_id": order_id})
    assert gift["status"] == "finished" and gift["draw"]["winners"] == []
    assert gift["draw"]["returned"] == [0, 1, 2]


@pytest.mark.gen_test
async def test_a_full_gift_that_never_fills_opens_at_its_deadline(db, gifts, drawer):
    order_id = await make_gift(gifts, "full", joiners=3, items=1, open_number=10)
    draws = drawer()
    assert await draws.open_due() == 0  # not due yet
    await make_due(db, order_id)
    assert await draws.open_due() == 1
    await draws.idle()
    result = await outcomes(db, order_id)
    assert result["won"] == [0] and len(result["lost"]) == 2


@pytest.mark.gen_test
async def test_the_last_seat_opens_a_full_gift_without_the_joiner_waiting(db, gifts, drawer):
    draws = drawer()
    gifts.on_ready = draws.open_soon
    order_id = await make_gift(gifts, "full", joiners=3, items=1, open_number=3)
    await draws.idle()  # the draw the last seat started, and its outcome copy
    assert (await db.gifts.find_one({"_id": order_id}))["status"] == "finished"
    assert (await outcomes(db, order_id))["won"] == [0]


@pytest.mark.gen_test
async def test_racing_drawers_produce_one_draw(db, gifts, drawer):
    order_id = await make_gift(gifts, "timed", joiners=10, items=3)
    await make_due(db, order_id)
    racers = [drawer() for _ in range(6)]
    results = await asyncio.gather(*(racer.open(order_id) for racer in racers))
    assert results.count(True) == 1
    await asyncio.gather(*(racer.idle() for racer in racers))
    assert (await outcomes(db, order_id))["won"] == [0, 1, 2]
    assert await db.proofs.count_documents({"_id": order_id}) == 1


@pytest.mark.gen_test
async def test_a_draw_stalled_before_its_result_is_resumed_with_the_same_winners(db, gifts, drawer):
    order_id = await make_gift(gifts, "timed", joiners=10, items=4)
    await make_due(db, order_id)
    first = drawer(lease=timedelta(milliseconds=200), stall="before_finish")
    stalled = asyncio.ensure_future(first.open(order_id))
    for _ in range(100):
        proof = await db.proofs.find_one({"_id": order_id})
        if proof is not None:
            break
        await asyncio.sleep(0.05)
    stalled_gift = await db.gifts.find_one({"_id": order_id})
    assert stalled_gift["status"] == "drawing"
    await until_past(stalled_gift["lease_until"])  # the stalled draw's lease lapses
    second = drawer()
    assert await second.open_due() == 1
    stalled.cancel()
    gift = await db.gifts.find_one({"_id": order_id})
    assert gift["draw"]["winners"] == proof["winner_member_ids"]  # frozen by the first drawer
    await second.idle()
    won = {j["member_id"]: j["item_index"] for j in await db.joins.find({"order_id": order_id, "outcome": "won"}).to_list()}
    assert won == {m: i for i, m in enumerate(proof["winner_member_ids"])}


@pytest.mark.gen_test
async def test_outcomes_left_half_copied_are_finished_by_the_sweep(db, gifts, drawer):
    order_id = await make_gift(gifts, "timed", joiners=10, items=4)
    await make_due(db, order_id)
    first = drawer(lease=timedelta(milliseconds=200), stall="after_winners=2")
    assert await first.open(order_id)  # the result is committed; the copy stalls after 2 winners
    for _ in range(100):
        if len((await outcomes(db, order_id))["won"]) == 2:
            break
        await asyncio.sleep(0.05)
    assert len((await outcomes(db, order_id))["won"]) == 2
    record = await db.outbox.find_one({"_id": f"outcomes:{order_id}"})
    await until_past(record["created_at"] + timedelta(milliseconds=200))  # older than a lease
    assert await drawer(lease=timedelta(milliseconds=200)).open_due() == 0
    for task in list(first._tasks):
        task.cancel()
    gift = await db.gifts.find_one({"_id": order_id})
    result = await outcomes(db, order_id)
    assert result["won"] == [0, 1, 2, 3] and len(result["lost"]) == 6 and result["none"] == []
    won = {j["member_id"]: j["item_index"] for j in await db.joins.find({"order_id": order_id, "outcome": "won"}).to_list()}
    assert won == {m: i for i, m in enumerate(gift["draw"]["winners"])}
    assert (await db.outbox.find_one({"_id": f"outcomes:{order_id}"}))["status"] == "done"


@pytest.mark.gen_test
async def test_only_the_sender_may_open_early_and_not_a_direct_gift(db, gifts, drawer):
    order_id = await make_gift(gifts, "full", joiners=2, items=1, open_number=10)
    draws = drawer()
    joiner = await gifts.accounts.ensure_member("o_joiner0")
    sender = await gifts.accounts.ensure_member("o_sender")
    with pytest.raises(Forbidden):
        await draws.open_early(order_id, joiner)
    await draws.open_early(order_id, sender)
    assert (await db.gifts.find_one({"_id": order_id}))["status"] == "finished"
    with pytest.raises(GiftOpened):
        await draws.open_early(order_id, sender)
    direct = await make_gift(gifts, "direct", joiners=1, items=3)
    with pytest.raises(NotOpenable):
        await draws.open_early(direct, sender)


@pytest.mark.gen_test
async def test_a_backlog_of_due_gifts_is_drawn_in_batches_all_of_it(db, gifts, drawer):
    order_ids = [await make_gift(gifts, "timed", joiners=2, items=1) for _ in range(5)]
    for order_id in order_ids:
        await make_due(db, order_id)
    draws = drawer(batch_size=2)
    assert await draws.open_due() == 5
    assert await db.gifts.count_documents({"_id": {"$in": order_ids}, "status": "finished"}) == 5
    await draws.idle()
    for order_id in order_ids:
        assert (await outcomes(db, order_id))["won"] == [0]


@pytest.mark.gen_test
async def test_due_filter_ignores_open_gifts_not_yet_due(db, gifts, drawer):
    order_id = await make_gift(gifts, "timed", joiners=1)
    assert not await drawer().open(order_id)


@pytest.mark.gen_test
async def test_until_outcomes_are_copied_the_result_reads_from_the_gift(db, gifts, drawer):
    order_id = await make_gift(gifts, "timed", joiners=4, items=1)
    await make_due(db, order_id)
    draws = drawer(lease=timedelta(milliseconds=100))
    await draws.open(order_id)
    await draws.idle()
    # Put things back as if the drawer had died right after committing the result.
    await db.joins.update_many({"order_id": order_id}, {"$set": {"outcome": None, "item_index": None}})
    await db.outbox.update_one({"_id": f"outcomes:{order_id}"}, {"$set": {"status": "pending"}})
    record = await db.outbox.find_one({"_id": f"outcomes:{order_id}"})
    views = [(await gifts.look(order_id, await gifts.accounts.ensure_member(f"o_joiner{i}")))[1]
             for i in range(4)]
    assert sorted(v["state"] for v in views) == ["lost", "lost", "lost", "won"]
    assert [v["item"]["name"] for v in views if v["state"] == "won"] == ["item0"]
    await until_past(record["created_at"] + draws.lease)  # the sweep takes over copies older than a lease
    await draws.open_due()
    result = await outcomes(db, order_id)
    assert result["won"] == [0] and len(result["lost"]) == 3
    assert (await db.outbox.find_one({"_id": f"outcomes:{order_id}"}))["status"] == "done"


@pytest.mark.gen_test
async def test_a_gift_drawing_under_another_drawers_live_lease_is_never_taken(db, gifts, drawer):
    order_id = await make_gift(gifts, "timed", joiners=5, items=2)
    await make_due(db, order_id)
    first = drawer(lease=timedelta(minutes=10), stall="before_finish")
    stalled = asyncio.ensure_future(first.open(order_id))
    try:
        for _ in range(200):
            if await db.proofs.find_one({"_id": order_id}) is not None:
                break
            await asyncio.sleep(0.05)
        held = await db.gifts.find_one({"_id": order_id})
        assert held["status"] == "drawing" and held["lease_owner"].startswith(first.owner)
        second = drawer()
        assert await second.open_due() == 0
        assert not await second.open(order_id)
        after = await db.gifts.find_one({"_id": order_id})
        assert (after["status"], after["lease_owner"], after["version"]) == \
            ("drawing", held["lease_owner"], held["version"])
    finally:
        stalled.cancel()
