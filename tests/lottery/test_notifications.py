"""Expanding durable records into notification entries: once, only after the draw finished,
and taken over from a process that died while expanding. A drawn gift's participants are queued
as pages, the same pages however often, and each page becomes its entries once."""
import asyncio
from datetime import timedelta

import pytest

from lottery import clock
from lottery.accounts import Accounts
from lottery import notifications as notifications_module
from lottery.notifications import Notifications
from lottery.storage import notifications as store
from lottery.storage.joins import new_join
from tests.notify.support import TEMPLATE_IDS, open_gift, timed_gift


@pytest.mark.gen_test(timeout=30)
async def test_an_opened_gift_expands_once_however_often_it_is_retried(db):
    order_id, subscribers = await timed_gift(db, joiners=7, items=2, subscribed_every=3)
    await open_gift(db, order_id)
    first, second = Notifications(db, TEMPLATE_IDS), Notifications(db, TEMPLATE_IDS)
    assert await first.expand_opened_gifts() == 1
    assert await second.expand_opened_gifts() == 0
    # Pages expanded by two processes at once: each page by one of them.
    made = await asyncio.gather(first.expand_pages(), second.expand_pages())
    assert sum(map(len, made)) == 7
    # Even a record and its pages set back to pending (a draw resumed from scratch) add nothing.
    await db.outbox.update_many({"order_id": order_id}, {"$set": {"status": "pending"}})
    assert await second.expand_opened_gifts() == 1
    await first.expand_pages()
    counts = await store.status_counts(db, order_id)
    assert counts["pending"] == len(subscribers) == 3 and counts["not_subscribed"] == 5
    gift = await db.gifts.find_one({"_id": order_id})
    won = await db.notifications.find({"order_id": order_id, "kind": "gift_won"}).to_list()
    assert sorted(e["member_id"] for e in won) == sorted(gift["draw"]["winners"])


async def pages_of(db, order_id: str) -> dict[str, list[str]]:
    return {page["page"]: [m["member_id"] for m in page["members"]]
            async for page in db.outbox.find({"kind": "participants", "order_id": order_id})}


@pytest.mark.gen_test(timeout=30)
async def test_a_gift_read_in_several_batches_gives_each_participant_one_entry(db, monkeypatch):
    monkeypatch.setattr(notifications_module, "READ_BATCH", 3)  # 8 participants: batches of 3, 3, 2
    order_id, _ = await timed_gift(db, joiners=8, items=2)
    await open_gift(db, order_id)
    notifications = Notifications(db, TEMPLATE_IDS, page_size=3)
    assert await notifications.expand_opened_gifts() == 1
    # Queued as pages: the two winners' first, the six others' in two pages by their hash.
    gift = await db.gifts.find_one({"_id": order_id})
    pages = await pages_of(db, order_id)
    assert pages["00000"] == gift["draw"]["winners"] and set(pages) == {"00000", "00001", "00002"}
    assert await db.notifications.count_documents({"kind": {"$in": ["gift_won", "gift_lost"]}}) == 0
    assert len(await notifications.expand_pages(room=1)) == 2  # at least one page, then no room
    assert len(await notifications.expand_pages()) == 6
    entries = await db.notifications.find({"order_id": order_id, "kind": {"$in": ["gift_won", "gift_lost"]}}).to_list()
    joined = await db.joins.distinct("member_id", {"order_id": order_id})
    assert sorted(e["member_id"] for e in entries) == sorted(joined) and len(joined) == 8
    assert sorted(e["member_id"] for e in entries if e["kind"] == "gift_won") == sorted(gift["draw"]["winners"])
    record = await db.outbox.find_one({"_id": f"opened:{order_id}"})
    assert record["status"] == "done" and record["notifications"] == 9  # and the sender's summary


@pytest.mark.gen_test(timeout=30)
async def test_a_takeover_writes_the_pages_the_first_expansion_wrote_whatever_order_it_reads_the_joins_in(
        db, monkeypatch):
    order_id, _ = await timed_gift(db, joiners=20, items=3)
    await open_gift(db, order_id)
    notifications = Notifications(db, TEMPLATE_IDS, page_size=4)
    assert await notifications.expand_opened_gifts() == 1
    first = await pages_of(db, order_id)
    assert sorted(sum(first.values(), [])) == sorted(await db.joins.distinct("member_id", {"order_id": order_id}))
    # A process that died after writing some pages: its takeover reads the joins in another order.
    await db.outbox.delete_many({"kind": "participants", "_id": {"$gt": f"participants:{order_id}:00002"}})
    await db.outbox.update_one({"_id": f"opened:{order_id}"}, {"$set": {"status": "pending"}})
    in_batches = notifications_module.joins.in_batches

    async def reversed_batches(db_, order_id_, size):
        everyone = [join async for batch in in_batches(db_, order_id_, size) for join in batch]
        yield everyone[::-1]
    monkeypatch.setattr(notifications_module.joins, "in_batches", reversed_batches)
    assert await notifications.expand_opened_gifts() == 1
    assert await pages_of(db, order_id) == first
    assert len(await notifications.expand_pages()) == 20


@pytest.mark.gen_test(timeout=30)
async def test_a_page_held_by_a_dead_process_is_expanded_once_its_lease_lapses(db):
    order_id, _ = await timed_gift(db, joiners=3, items=1)
    await open_gift(db, order_id)
    notifications = Notifications(db, TEMPLATE_IDS)
    assert await notifications.expand_opened_gifts() == 1
    await db.outbox.update_many({"kind": "participants", "order_id": order_id}, {"$set": {
        "status": "taken", "lease_owner": "dead", "lease_until": clock.utcnow() + timedelta(minutes=1)}})
    assert len(await notifications.expand_pages()) == 0  # still held
    await db.outbox.update_many({"kind": "participants", "order_id": order_id},
                                {"$set": {"lease_until": clock.utcnow() - timedelta(seconds=1)}})
    assert len(await notifications.expand_pages()) == 3
    assert len(await notifications.expand_pages()) == 0
    assert await db.notifications.count_documents({"order_id": order_id}) == 4


@pytest.mark.gen_test(timeout=30)
async def test_a_record_whose_gift_is_not_finished_yet_waits(db):
    order_id, _ = await timed_gift(db, joiners=2, items=1)
    await db.outbox.insert_one({"_id": f"opened:{order_id}", "kind": "gift_opened", "order_id": order_id,
                                 "status": "pending", "created_at": clock.utcnow()})
    notifications = Notifications(db, TEMPLATE_IDS)
    assert await notifications.expand_opened_gifts() == 0
    assert await db.notifications.count_documents({}) == 0
    record = await db.outbox.find_one({"_id": f"opened:{order_id}"})
    assert record["status"] == "taken" and record["lease_until"] <= clock.utcnow() + timedelta(seconds=3)


@pytest.mark.gen_test(timeout=30)
async def test_a_record_held_by_a_dead_process_is_taken_over_when_its_lease_lapses(db):
    order_id, _ = await timed_gift(db, joiners=3, items=1)
    await open_gift(db, order_id)
    await db.outbox.update_one({"_id": f"opened:{order_id}"}, {"$set": {
        "status": "taken", "lease_owner": "dead", "lease_until": clock.utcnow() + timedelta(minutes=1)}})
    notifications = Notifications(db, TEMPLATE_IDS)
    assert await notifications.expand_opened_gifts() == 0  # still held
    await db.outbox.update_one({"_id": f"opened:{order_id}"},
                                {"$set": {"lease_until": clock.utcnow() - timedelta(seconds=1)}})
    assert await notifications.expand_opened_gifts() == 1
    assert len(await notifications.expand_pages()) == 3
    assert await db.notifications.count_documents({"order_id": order_id}) == 4


@pytest.mark.gen_test(timeout=30)
async def test_a_join_recorded_after_the_freeze_and_left_out_of_the_draw_gets_no_result(db):
    order_id, _ = await timed_gift(db, joiners=5, items=2)
    await open_gift(db, order_id)
    # A timed join counted in time but recorded after the freeze: the draw left it out, and the
    # expansion reads the joins before the join takes its record back.
    late = await Accounts(db, None).ensure_member("o_late_joiner")
    await db.joins.insert_one({**new_join(order_id, late, clock.utcnow()), "subscribed": ["tpl_won", "tpl_lost"]})
    notifications = Notifications(db, TEMPLATE_IDS)
    assert await notifications.expand_opened_gifts() == 1
    assert late not in sum((await pages_of(db, order_id)).values(), [])
    assert len(await notifications.expand_pages()) == 5
    assert await db.notifications.count_documents({"member_id": late}) == 0
