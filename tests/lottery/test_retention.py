"""Records with no further use leave by TTL index: final notification entries after 90 days and
done outbox records after 30 (configurable); gifts, joins and proofs stay."""
from datetime import timedelta

import pytest

from lottery.notifications import Notifications
from lottery.storage.connection import Retention, ensure_indexes
from tests.notify.support import TEMPLATE_IDS, open_gift, timed_gift


async def ttl_of(collection, field: str) -> int | None:
    async for index in await collection.list_indexes():
        if dict(index["key"]) == {field: 1}:
            return index.get("expireAfterSeconds")
    return None


@pytest.mark.gen_test
async def test_final_entries_and_done_records_expire_and_a_new_period_applies_in_place(db):
    assert await ttl_of(db.notifications, "final_at") == 90 * 86400
    assert await ttl_of(db.outbox, "done_at") == 30 * 86400
    await ensure_indexes(db, Retention(notifications=timedelta(days=7), outbox=timedelta(days=2)))
    assert await ttl_of(db.notifications, "final_at") == 7 * 86400
    assert await ttl_of(db.outbox, "done_at") == 2 * 86400
    # Nothing that must be kept has a TTL index.
    for name in ("gifts", "joins", "proofs", "draw_results", "members"):
        async for index in await db[name].list_indexes():
            assert "expireAfterSeconds" not in index, (name, index)


@pytest.mark.gen_test
async def test_entries_carry_the_date_retention_counts_from_once_final_and_not_before(db):
    order_id, subscribers = await timed_gift(db, joiners=4, items=1, subscribed_every=2)
    await open_gift(db, order_id)
    notifications = Notifications(db, TEMPLATE_IDS)
    await notifications.expand_opened_gifts()
    await notifications.expand_pages()
    entries = await db.notifications.find({"order_id": order_id}).to_list()
    assert {e["status"] for e in entries} == {"pending", "not_subscribed"}
    for entry in entries:
        assert ("final_at" in entry) == (entry["status"] != "pending"), entry
    done = await db.outbox.find({"order_id": order_id, "status": "done"}).to_list()
    assert done and all("done_at" in record for record in done)
