"""Real server processes sharing one outbox: a worker killed (SIGKILL) mid-batch and restarted,
and two workers at once. Each subscriber still gets exactly one message."""
from collections import Counter

import pytest

from tests.notify.support import CONFIG_JSON, settled, timed_gift
from tests.servers import ServerProcess, uri_with_db
from tests.waiting import until

WORKER_ARGS = ("--role=scheduler", "--sweep_seconds=0.2", "--notify_lease_seconds=2",
               "--notify_concurrency=4", "--notify_rate=500", "--notify_backoff_seconds=0.2")


def worker_process(engine_uri: str, db_name: str, wechat_url: str, *args: str) -> ServerProcess:
    process = ServerProcess(uri_with_db(engine_uri, db_name), wechat_url, *WORKER_ARGS, *args)
    process.env["NOTIFY_TEMPLATES"] = CONFIG_JSON
    return process


@pytest.mark.gen_test(timeout=90)
async def test_a_worker_killed_mid_batch_and_restarted_still_sends_each_message_once(
        db, db_name, engine_uri, wechat_fake):
    order_id, subscribers = await timed_gift(db, joiners=160, items=3, subscribed_every=2)
    # WeChat is down and slow to say so: the worker always has requests in flight.
    wechat_fake.outage, wechat_fake.outage_delay = True, 0.1
    first = worker_process(engine_uri, db_name, wechat_fake.url).start()
    processes = [first]
    try:
        async def busy() -> bool:  # the draw ran, the entries exist, the worker holds some
            return await db.notifications.count_documents({"attempts": {"$gte": 1}}) >= 40 and \
                await db.notifications.count_documents({"status": "sending"}) > 0
        await until(busy)
        first.kill()
        held = await db.notifications.find({"status": "sending"}).to_list()
        assert held and all(e["lease_owner"] for e in held)
        wechat_fake.outage = False
        second = worker_process(engine_uri, db_name, wechat_fake.url).start()
        processes.append(second)
        counts = await settled(db, order_id)
    finally:
        for process in processes:
            process.stop()
    assert Counter(m["touser"] for m in wechat_fake.delivered) == Counter(subscribers)
    assert counts["sent"] == 80 and counts["not_subscribed"] == 81 and counts["failed"] == 0
    for entry in held:  # taken over once the dead process's lease lapsed
        after = await db.notifications.find_one({"_id": entry["_id"]})
        assert after["status"] == "sent" and after["attempts"] > entry["attempts"]
        assert after["last_attempt_by"] != entry["lease_owner"]


@pytest.mark.gen_test(timeout=90)
async def test_two_worker_processes_share_the_outbox_and_send_each_message_once(
        db, db_name, engine_uri, wechat_fake):
    wechat_fake.send_delay = 0.03
    # Pages of 10: the gift's 160 participants are 17 pages for the two processes to share, each
    # long enough (10 sends of 30 ms, 4 at a time) for the other process's next look.
    processes = [worker_process(engine_uri, db_name, wechat_fake.url, "--notify_page_size=10").start()
                 for _ in range(2)]
    try:
        order_id, subscribers = await timed_gift(db, joiners=160, items=3)
        counts = await settled(db, order_id)
    finally:
        for process in processes:
            process.stop()
    assert Counter(m["touser"] for m in wechat_fake.delivered) == Counter(subscribers)
    assert counts["sent"] == 160
    senders = await db.notifications.distinct("last_attempt_by", {"status": "sent"})
    assert len({s.rsplit(":", 1)[0] for s in senders}) == 2  # both processes delivered
    # One token for both processes: fetched once, by whichever took the refresh lease; the
    # other read it from the database.
    assert len(wechat_fake.stable_token_calls(forced=True)) == 0
    assert len(wechat_fake.stable_token_calls(forced=False)) == 1
