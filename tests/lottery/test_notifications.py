"""Expanding durable records into notification entries: once, only after the draw finished,
and taken over from a process that died while expanding."""
from datetime import timedelta

import pytest

from lottery import clock
from lottery import notifications as notifications_module
from lottery.notifications import Notifications
from lottery.storage import notifications as store
from tests.notify.support import TEMPLATE_IDS, open_gift, timed_gift


@pytest.mark.gen_test(timeout=30)
async def test_an_opened_gift_expands_once_however_often_it_is_retried(db):
    order_id, subscribers = await timed_gift(db, joiners=7, items=2, subscribed_every=3)
    await open_gift(db, order_id)
    first, second = Notifications(db, TEMPLATE_IDS), Notifications(db, TEMPLATE_IDS)
    assert await first.expand_opened_gifts() == 1
    assert await second.expand_opened_gifts() == 0
    # Even a record set back to pending (a draw resumed from scratch) adds nothing.
    await db.outbox.update_one({"_id": f"opened:{order_id}"}, {"$set": {"status": "pending"}})
    assert await second.expand_opened_gifts() == 1
    counts = await store.status_counts(db, order_id)
    assert counts["pending"] == len(subscribers) == 3 and counts["not_subscribed"] == 5
    gift = await db.gifts.find_one({"_id": order_id})
    won = await db.notifications.find({"order_id": order_id, "kind": "gift_won"}).to_list()
    assert sorted(e["member_id"] for e in won) == sorted(gift["draw"]["winners"])


@pytest.mark.gen_test(timeout=30)
async def test_a_gift_read_in_several_batches_gives_each_participant_one_entry(db, monkeypatch):
    monkeypatch.setattr(notifications_module, "PAGE_SIZE", 3)  # 8 participants: batches of 3, 3, 2
    order_id, _ = await timed_gift(db, joiners=8, items=2)
    await open_gift(db, order_id)
    assert await Notifications(db, TEMPLATE_IDS).expand_opened_gifts() == 1
    entries = await db.notifications.find({"order_id": order_id, "kind": {"$in": ["gift_won", "gift_lost"]}}).to_list()
    joined = await db.joins.distinct("member_id", {"order_id": order_id})
    assert sorted(e["member_id"] for e in entries) == sorted(joined) and len(joined) == 8
    record = await db.outbox.find_one({"_id": f"opened:{order_id}"})
    assert record["status"] == "done" and record["notifications"] == 9  # and the sender's summary


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
    assert await db.notifications.count_documents({"order_id": order_id}) == 4
