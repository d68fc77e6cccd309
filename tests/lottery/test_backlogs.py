"""Backlog gauges: each queue's waiting work, counted with filters an index serves (the query
guard fails this test otherwise), capped, and set on the gauge."""
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from lottery import backlogs, clock
from lottery.backlogs import Backlogs


def gauge(queue: str) -> float | None:
    return REGISTRY.get_sample_value("gift_lottery_backlog", {"queue": queue})


@pytest.mark.gen_test
async def test_each_queue_is_counted_and_its_gauge_set(db, monkeypatch):
    now = clock.utcnow()
    await db.notifications.insert_many([{"_id": f"n{i}", "status": "pending"} for i in range(3)]
                                       + [{"_id": "n-sent", "status": "sent"}, {"_id": "n-busy", "status": "sending"}])
    await db.refunds.insert_many([{"_id": "r1", "status": "failed"}, {"_id": "r2", "status": "pending"},
                                  {"_id": "r3", "status": "success"}])
    await db.outbox.insert_many([{"_id": "o1", "kind": "message", "status": "pending"},
                                 {"_id": "o2", "kind": "message", "status": "done"},
                                 {"_id": "o3", "kind": "gift_opened", "status": "pending"}])
    await db.gifts.insert_many([{"_id": "late", "status": "open", "due_at": now - timedelta(minutes=5)},
                                {"_id": "later", "status": "open", "due_at": now + timedelta(minutes=5)},
                                {"_id": "done", "status": "finished", "due_at": now - timedelta(minutes=5)}])
    counts = await Backlogs(db).refresh()
    assert counts["notifications_pending"] == 3 and counts["notifications_sending"] == 1
    assert counts["refunds_failed"] == 1 and counts["refunds_pending"] == 1 and counts["refunds_processing"] == 0
    assert counts["outbox_message"] == 1 and counts["outbox_gift_opened"] == 1 and counts["outbox_record_outcomes"] == 0
    assert counts["gifts_overdue"] == 1
    assert gauge("notifications_pending") == 3 and gauge("refunds_failed") == 1 and gauge("gifts_overdue") == 1
    # Past the cap, a queue reads as the cap: a scrape never costs a count over everything.
    monkeypatch.setattr(backlogs, "CAP", 2)
    assert (await Backlogs(db).refresh())["notifications_pending"] == 2
