"""The draw: everyone ends with an outcome, once, whoever races and whatever stalls."""
import asyncio
from datetime import timedelta

import pytest

from lottery import clock, fairness
from lottery.errors import Forbidden, GiftOpened, NotOpenable
from lottery.storage import gifts as gift_store
from lottery.storage import joins, proofs
from tests.gifts import make_due, make_gift
from tests.waiting import until, until_past


async def gift_id(gifts, method: str, joiners: int, items: int = 3, **fields) -> str:
    return (await make_gift(gifts, method, joiners, items, **fields))["_id"]


async def outcomes(db, order_id: str) -> dict[str, list]:
    """The items on the join records marked won; once the gift is finished every other join
    lost (its record keeps `outcome: null`); before, they have no outcome."""
    finished = (await db.gifts.find_one({"_id": order_id}))["status"] == "finished"
    joins = await db.joins.find({"order_id": order_id}).to_list()
    others = [j for j in joins if j["outcome"] != "won"]
    return {"won": sorted(j["item_index"] for j in joins if j["outcome"] == "won"),
            "lost": others if finished else [], "none": [] if finished else others}


@pytest.mark.gen_test
async def test_a_timed_gift_draws_min_items_participants_and_returns_the_rest(db, gifts, drawer):
    order_id = await gift_id(gifts, "timed", joiners=2, items=3)
    await make_due(db, order_id)
    draws = drawer()
    assert await draws.sweep() == 1
    gift = await db.gifts.find_one({"_id": order_id})
    assert gift["status"] == "finished" and gift["draw"]["returned"] == [2]
    assert len(gift["draw"]["winners"]) == 2  # the result, committed with the finish
    await draws.idle()  # then copied onto the joins
    result = await outcomes(db, order_id)
    assert result["won"] == [0, 1] and result["lost"] == [] and result["none"] == []
    assert await db.outbox.find_one({"_id": f"opened:{order_id}"}) is not None


@pytest.mark.gen_test
async def test_every_participant_ends_with_won_or_lost(db, gifts, drawer):
    order_id = await gift_id(gifts, "timed", joiners=12, items=4)
    await make_due(db, order_id)
    draws = drawer()
    await draws.open([order_id])
    await draws.idle()  # outcomes are copied onto the joins just after the result
    result = await outcomes(db, order_id)
    assert result["won"] == [0, 1, 2, 3] and len(result["lost"]) == 8 and result["none"] == []


@pytest.mark.gen_test
async def test_the_proof_recomputes(db, gifts, drawer):
    order_id = await gift_id(gifts, "timed", joiners=7, items=2)
    await make_due(db, order_id)
    draws = drawer()
    await draws.open([order_id])
    proof = await draws.proof(order_id)
    assert fairness.verify(proof, draws.beacon.chain) == []
    assert len(proof["participants"]) == 7 and "winner_member_ids" not in proof
    gift = await db.gifts.find_one({"_id": order_id})
    assert proof["seed_commitment"] == gift["seed_commitment"]


@pytest.mark.gen_test
async def test_a_drawn_proofs_frozen_list_is_never_rewritten_its_result_is_stored_beside_it(db, gifts, drawer):
    order_id = await gift_id(gifts, "timed", joiners=5, items=2)
    await make_due(db, order_id)
    draws = drawer()
    await draws.open([order_id])
    frozen = await db.proofs.find_one({"_id": order_id})
    assert "winners" not in frozen and "signature" not in frozen["beacon"]  # as it was frozen
    assert await proofs.exists(db, order_id) and not await proofs.exists(db, "no such gift")
    result = await db.draw_results.find_one({"_id": order_id})
    assert result["beacon"]["round"] == frozen["beacon"]["round"] and result["beacon"]["status"] == "verified"
    gift = await db.gifts.find_one({"_id": order_id})
    assert result["winner_member_ids"] == gift["draw"]["winners"]
    proof = await draws.proof(order_id)
    assert proof["winners"] == result["winners"] and fairness.verify(proof, draws.beacon.chain) == []


@pytest.mark.gen_test
async def test_a_proof_completed_in_place_by_an_earlier_version_reads_whole_and_is_not_completed_again(
        db, gifts, drawer):
    order_id = await gift_id(gifts, "timed", joiners=5, items=2)
    await make_due(db, order_id)
    await drawer().open([order_id])
    # The earlier versions' shape: the result inside the proof, no separate document.
    result = await db.draw_results.find_one_and_delete({"_id": order_id})
    await db.proofs.update_one({"_id": order_id}, {"$set": {f: result[f] for f in proofs.RESULT_FIELDS}})
    stored = await proofs.get(db, order_id)
    assert stored["winners"] == result["winners"] and stored["beacon"] == result["beacon"]
    assert (await proofs.save(db, [{"_id": order_id, "participants": []}]))[order_id]["winners"] == result["winners"]
    assert await db.draw_results.count_documents({}) == 0


@pytest.mark.gen_test
async def test_no_participants_finishes_with_every_item_returned(db, gifts, drawer):
    order_id = await gift_id(gifts, "timed", joiners=0, items=3)
    await make_due(db, order_id)
    assert await drawer().open([order_id])
    gift = await db.gifts.find_one({"_id": order_id})
    assert gift["status"] == "finished" and gift["draw"]["winners"] == []
    assert gift["draw"]["returned"] == [0, 1, 2]


@pytest.mark.gen_test
async def test_a_full_gift_that_never_fills_opens_at_its_deadline(db, gifts, drawer):
    order_id = await gift_id(gifts, "full", joiners=3, items=1, open_number=10)
    draws = drawer()
    assert await draws.sweep() == 0  # not due yet
    await make_due(db, order_id)
    assert await draws.sweep() == 1
    await draws.idle()
    result = await outcomes(db, order_id)
    assert result["won"] == [0] and len(result["lost"]) == 2


@pytest.mark.gen_test
async def test_the_last_seat_opens_a_full_gift_without_the_joiner_waiting(db, gifts, drawer):
    draws = drawer()
    gifts.admission.on_ready = draws.open_soon
    order_id = await gift_id(gifts, "full", joiners=3, items=1, open_number=3)
    await draws.idle()  # the draw the last seat started, and its outcome copy
    assert (await db.gifts.find_one({"_id": order_id}))["status"] == "finished"
    assert (await outcomes(db, order_id))["won"] == [0]


@pytest.mark.parametrize("settle_timeout", [2.0, 0.1])
@pytest.mark.gen_test
async def test_a_joiner_still_writing_when_the_last_seat_opens_the_gift_has_joined_with_their_choices(
        db, gifts, drawer, monkeypatch, settle_timeout):
    # Three processes behind nginx found it (tests/deploy): the last seat's draw restored the
    # records of joiners whose claim had landed and record had not, and they were told
    # "already joined", their subscriptions lost. The draw now waits for records in flight; a
    # record slower than that is restored (without the choices) and its joiner still joined.
    draws = drawer(settle_timeout=settle_timeout)
    gifts.admission.on_ready = draws.open_soon
    order_id = await gift_id(gifts, "full", joiners=2, items=1, open_number=4)
    slow, last = await gifts.accounts.ensure_member("o_slow"), await gifts.accounts.ensure_member("o_last")
    written = joins.insert_many
    release = asyncio.Event()

    async def slow_insert(db, records):
        if any(record["member_id"] == slow for record in records):
            await release.wait()
        return await written(db, records)

    monkeypatch.setattr(joins, "insert_many", slow_insert)
    joining = asyncio.ensure_future(gifts.join(order_id, slow, subscribed=["tpl_won"]))
    await until(lambda: gifts_claimants(db, order_id, slow))
    await gifts.join(order_id, last)  # the last seat: the draw starts while `slow` still writes
    if settle_timeout > 0.5:
        await asyncio.sleep(0.2)  # the record lands while the draw waits for it
    else:  # the record lands only after the draw gave up waiting and restored it
        await until(lambda: has_join_record(db, order_id, slow))
    release.set()
    assert (await joining).state == "joined_waiting"
    await draws.idle()
    record = await db.joins.find_one({"order_id": order_id, "member_id": slow})
    assert record["subscribed"] == (["tpl_won"] if settle_timeout > 0.5 else [])
    assert (await db.gifts.find_one({"_id": order_id}))["status"] == "finished"


async def has_join_record(db, order_id: str, member_id: str) -> bool:
    return await db.joins.count_documents({"order_id": order_id, "member_id": member_id}) == 1


async def gifts_claimants(db, order_id: str, member_id: str) -> bool:
    return await db.gifts.count_documents({"_id": order_id, f"claimants.{member_id}": {"$exists": True}}) == 1


@pytest.mark.gen_test
async def test_racing_drawers_produce_one_draw(db, gifts, drawer):
    order_id = await gift_id(gifts, "timed", joiners=10, items=3)
    await make_due(db, order_id)
    racers = [drawer() for _ in range(6)]
    results = await asyncio.gather(*(racer.open([order_id]) for racer in racers))
    assert [bool(r) for r in results].count(True) == 1
    await asyncio.gather(*(racer.idle() for racer in racers))
    assert (await outcomes(db, order_id))["won"] == [0, 1, 2]
    assert await db.proofs.count_documents({"_id": order_id}) == 1


@pytest.mark.gen_test
async def test_a_draw_stalled_before_its_result_is_resumed_with_the_same_winners(db, gifts, drawer):
    order_id = await gift_id(gifts, "timed", joiners=10, items=4)
    await make_due(db, order_id)
    first = drawer(lease=timedelta(milliseconds=200), stall="before_finish")
    stalled = asyncio.ensure_future(first.open([order_id]))
    proof = await until(lambda: db.draw_results.find_one({"_id": order_id}))
    stalled_gift = await db.gifts.find_one({"_id": order_id})
    assert stalled_gift["status"] == "drawing"
    await until_past(stalled_gift["lease_until"])  # the stalled draw's lease lapses
    second = drawer()
    assert await second.sweep() == 1
    stalled.cancel()
    gift = await db.gifts.find_one({"_id": order_id})
    assert gift["draw"]["winners"] == proof["winner_member_ids"]  # frozen by the first drawer
    await second.idle()
    won = {j["member_id"]: j["item_index"] for j in await db.joins.find({"order_id": order_id, "outcome": "won"}).to_list()}
    assert won == {m: i for i, m in enumerate(proof["winner_member_ids"])}


@pytest.mark.gen_test
async def test_a_proof_another_drawer_completed_first_keeps_its_winners_in_a_batch_with_new_ones(db):
    frozen = [{"_id": order_id, "participants": ["p1", "p2"]} for order_id in ("g1", "g2")]
    await proofs.save(db, frozen)
    first = {**frozen[0], "beacon": {"round": 1}, "winners": ["p1"], "winner_member_ids": ["m1"]}
    assert await proofs.complete(db, [first]) == {"g1": first}
    late = [{**proof, "beacon": {"round": 1}, "winners": ["p2"], "winner_member_ids": ["m2"]} for proof in frozen]
    completed = await proofs.complete(db, late)
    assert completed["g1"]["winner_member_ids"] == ["m1"] and completed["g2"]["winner_member_ids"] == ["m2"]


@pytest.mark.gen_test
async def test_outcomes_left_half_copied_are_finished_by_the_sweep(db, gifts, drawer):
    order_id = await gift_id(gifts, "timed", joiners=10, items=4)
    await make_due(db, order_id)
    first = drawer(lease=timedelta(milliseconds=200), stall="after_winners=2")
    assert await first.open([order_id])  # the result is committed; the copy stalls after 2 winners
    async def two_copied() -> bool:
        return len((await outcomes(db, order_id))["won"]) == 2
    await until(two_copied)
    record = await db.outbox.find_one({"_id": f"outcomes:{order_id}"})
    await until_past(record["created_at"] + timedelta(milliseconds=200))  # older than a lease
    assert await drawer(lease=timedelta(milliseconds=200)).sweep() == 0
    await first.idle(timeout=0)  # the stalled copy is abandoned, as if its process had died
    gift = await db.gifts.find_one({"_id": order_id})
    result = await outcomes(db, order_id)
    assert result["won"] == [0, 1, 2, 3] and len(result["lost"]) == 6 and result["none"] == []
    won = {j["member_id"]: j["item_index"] for j in await db.joins.find({"order_id": order_id, "outcome": "won"}).to_list()}
    assert won == {m: i for i, m in enumerate(gift["draw"]["winners"])}
    assert (await db.outbox.find_one({"_id": f"outcomes:{order_id}"}))["status"] == "done"


@pytest.mark.gen_test
async def test_only_the_sender_may_open_a_full_or_timed_gift_early_and_never_a_direct_one(db, gifts, drawer):
    order_id = await gift_id(gifts, "full", joiners=2, items=1, open_number=10)
    draws = drawer()
    joiner = await gifts.accounts.ensure_member("o_joiner0")
    sender = await gifts.accounts.ensure_member("o_sender")
    with pytest.raises(Forbidden):
        await draws.open_early(order_id, joiner)
    await draws.open_early(order_id, sender)
    assert (await db.gifts.find_one({"_id": order_id}))["status"] == "finished"
    with pytest.raises(GiftOpened):
        await draws.open_early(order_id, sender)
    direct = await gift_id(gifts, "direct", joiners=1, items=3)
    with pytest.raises(NotOpenable):
        await draws.open_early(direct, sender)
    timed = await gift_id(gifts, "timed", joiners=2, items=1)  # its time is hours away
    await draws.open_early(timed, sender)
    assert (await db.gifts.find_one({"_id": timed}))["status"] == "finished"


@pytest.mark.gen_test
async def test_a_backlog_of_due_gifts_is_drawn_in_batches_all_of_it(db, gifts, drawer):
    order_ids = [await gift_id(gifts, "timed", joiners=2, items=1) for _ in range(5)]
    for order_id in order_ids:
        await make_due(db, order_id)
    draws = drawer(batch_size=2)
    assert await draws.sweep() == 5
    assert await db.gifts.count_documents({"_id": {"$in": order_ids}, "status": "finished"}) == 5
    await draws.idle()
    for order_id in order_ids:
        assert (await outcomes(db, order_id))["won"] == [0]


@pytest.mark.gen_test
async def test_a_sweep_while_a_batch_is_queued_leaves_what_is_due_to_the_batch(db, gifts, drawer):
    # Two takes at once would only compete for the engine's writes.
    asked, also_due = [await gift_id(gifts, "timed", joiners=2, items=1) for _ in range(2)]
    for order_id in (asked, also_due):
        await make_due(db, order_id)
    draws = drawer()
    draws.open_soon(asked)  # a job's batch, in its window
    assert await draws.sweep() == 0
    await draws.idle()
    for order_id in (asked, also_due):  # the batch took every due gift
        assert (await db.gifts.find_one({"_id": order_id}))["status"] == "finished"
    assert await draws.sweep() == 0  # and once it is done, the sweep has nothing left


@pytest.mark.gen_test
async def test_due_filter_ignores_open_gifts_not_yet_due(db, gifts, drawer):
    order_id = await gift_id(gifts, "timed", joiners=1)
    assert not await drawer().open([order_id])


@pytest.mark.gen_test
async def test_until_outcomes_are_copied_the_result_reads_from_the_gift(db, gifts, drawer):
    order_id = await gift_id(gifts, "timed", joiners=4, items=1)
    await make_due(db, order_id)
    draws = drawer(lease=timedelta(milliseconds=100))
    await draws.open([order_id])
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
    await draws.sweep()
    result = await outcomes(db, order_id)
    assert result["won"] == [0] and len(result["lost"]) == 3
    assert (await db.outbox.find_one({"_id": f"outcomes:{order_id}"}))["status"] == "done"


@pytest.mark.gen_test
async def test_a_gift_drawing_under_another_drawers_live_lease_is_never_taken(db, gifts, drawer):
    order_id = await gift_id(gifts, "timed", joiners=5, items=2)
    await make_due(db, order_id)
    first = drawer(lease=timedelta(minutes=10), stall="before_finish")
    stalled = asyncio.ensure_future(first.open([order_id]))
    try:
        await until(lambda: db.proofs.find_one({"_id": order_id}))
        held = await db.gifts.find_one({"_id": order_id})
        assert held["status"] == "drawing" and held["lease_owner"].startswith(first.owner)
        second = drawer()
        assert await second.sweep() == 0
        assert not await second.open([order_id])
        after = await db.gifts.find_one({"_id": order_id})
        assert (after["status"], after["lease_owner"], after["version"]) == \
            ("drawing", held["lease_owner"], held["version"])
    finally:
        stalled.cancel()


@pytest.mark.gen_test(timeout=60)
async def test_a_result_is_committed_once_and_a_second_finish_of_the_same_gifts_changes_nothing(db, gifts):
    # Two processes may both reach the finish of a resumed draw; the one that comes second finds
    # the gifts finished already: no second version step, no item registered for refund twice.
    plain, refunded = [await make_gift(gifts, "timed", joiners=1, items=2) for _ in range(2)]
    ids = [plain["_id"], refunded["_id"]]
    now = clock.utcnow()
    assert len(await gift_store.take(db, ids, "test:token", now, now + timedelta(minutes=1), early=True)) == 2
    before = {g["_id"]: g["version"] for g in await gift_store.get_many(db, ids)}
    summaries = {o: {"winners": [], "returned": [0, 1], "participant_count": 1} for o in ids}
    refunds = {refunded["_id"]: {1: 100}}
    assert sorted(await gift_store.finish(db, summaries, now, refunds)) == sorted(ids)
    assert await gift_store.finish(db, summaries, clock.utcnow(), refunds) == []
    after = {g["_id"]: g for g in await db.gifts.find({"_id": {"$in": ids}}).to_list()}
    for order_id in ids:
        assert after[order_id]["status"] == "finished" and after[order_id]["version"] == before[order_id] + 1
        assert clock.as_utc(after[order_id]["opened_at"]) == now.replace(microsecond=now.microsecond // 1000 * 1000)
        assert "lease_owner" not in after[order_id] and "lease_until" not in after[order_id]
    assert after[refunded["_id"]]["order"]["refund_unbatched"] == 1
    assert "order" not in after[plain["_id"]]
