"""Delivery through the outbox: once per (gift, member, kind), through outages, token expiry and
WeChat's refusals."""
from collections import Counter
from datetime import timedelta

import pytest

from lottery import clock
from lottery.storage import notifications as store
from tests.gifts import spec
from tests.notify.support import open_gift, settled, timed_gift
from tests.waiting import until


async def entries_held_by(db, make_worker, owner: str, lease: timedelta) -> tuple[str, list[str], list[str]]:
    """A small gift opened, and its participants' entries made claimed by `owner` for `lease`:
    (order id, subscribers, the held entries' ids)."""
    order_id, subscribers = await timed_gift(db, joiners=6, items=2)
    await open_gift(db, order_id)
    expander = make_worker()
    while await expander.expand_once():
        pass
    made = await expander.records.expand_pages(claim_for=(owner, clock.utcnow() + lease))
    return order_id, subscribers, [entry["_id"] for entry in made if entry["status"] == "sending"]


@pytest.mark.gen_test(timeout=90)
async def test_a_500_participant_gift_opened_during_an_outage_reaches_each_subscriber_once(
        db, wechat_fake, make_worker):
    order_id, subscribers = await timed_gift(db, joiners=500, items=5, subscribed_every=2)
    wechat_fake.outage = True
    await open_gift(db, order_id)
    worker = make_worker(concurrency=8)
    worker.start()
    # Everything due is attempted and fails while WeChat is down.
    await until(lambda: worker.stats.retried >= 250, timeout=60)
    assert wechat_fake.delivered == []
    wechat_fake.outage = False
    counts = await settled(db, order_id)
    per_user = Counter(m["touser"] for m in wechat_fake.delivered)
    assert set(per_user) == set(subscribers)
    assert set(per_user.values()) == {1}
    assert counts["sent"] == 250 and counts["not_subscribed"] == 251  # 250 others and the sender
    assert counts["failed"] == 0
    # The won template went to exactly the subscribed winners (how many of the 5 winners
    # subscribed is up to the draw).
    winners = (await db.gifts.find_one({"_id": order_id}))["draw"]["winners"]
    winner_openids = {m["openid"] async for m in db.members.find({"_id": {"$in": winners}})}
    won = [m["touser"] for m in wechat_fake.delivered if m["template_id"] == "tpl_won"]
    assert len(winners) == 5 and sorted(won) == sorted(winner_openids & set(subscribers))


@pytest.mark.gen_test(timeout=90)
async def test_a_big_gifts_participants_become_entries_only_as_the_delivery_takes_their_page_and_each_gets_one_message(
        db, wechat_fake, make_worker):
    order_id, subscribers = await timed_gift(db, joiners=150, items=3)
    worker = make_worker(rate=60, batch=10)
    worker.records.page_size = 10
    await open_gift(db, order_id)
    worker.start()
    ahead = []  # entries made and not yet answered, sampled while the gift drains

    async def drained() -> bool:
        ahead.append(await db.notifications.count_documents({"status": {"$in": ["pending", "sending"]}}))
        return len(wechat_fake.delivered) >= 150
    await until(drained, timeout=60, interval=0.05)
    await settled(db, order_id)
    assert Counter(m["touser"] for m in wechat_fake.delivered) == Counter(subscribers)
    # Never the whole gift at once: the page being sent (about 10), never much more.
    assert max(ahead) <= 40 and len(ahead) > 10


async def run_until_settled(worker, db, order_id: str) -> dict[str, int]:
    worker.start()
    try:
        return await settled(db, order_id)
    finally:
        await worker.stop()


@pytest.mark.gen_test(timeout=60)
async def test_winners_get_the_won_template_with_their_item_and_the_rest_the_lost_one(
        db, wechat_fake, make_worker):
    order_id, subscribers = await timed_gift(db, joiners=6, items=2)
    await open_gift(db, order_id)
    await run_until_settled(make_worker(), db, order_id)
    # Every entry is final, and dated for retention.
    assert await db.notifications.count_documents({"order_id": order_id, "final_at": {"$exists": False}}) == 0
    gift = await db.gifts.find_one({"_id": order_id})
    winner_openids = {m["openid"]: i for i, w in enumerate(gift["draw"]["winners"])
                      for m in [await db.members.find_one({"_id": w})]}
    assert len(wechat_fake.delivered) == 6
    for message in wechat_fake.delivered:
        if message["touser"] in winner_openids:
            assert message["template_id"] == "tpl_won"
            assert message["data"]["thing1"]["value"] == f"奖品{winner_openids[message['touser']]}"
        else:
            assert message["template_id"] == "tpl_lost"
        assert message["page"] == f"pages/gift/result?order_id={order_id}"
        assert message["miniprogram_state"] == "formal" and message["lang"] == "zh_CN"


@pytest.mark.gen_test(timeout=60)
async def test_a_token_expiring_mid_batch_causes_exactly_one_refresh(db, wechat_fake, make_worker):
    order_id, subscribers = await timed_gift(db, joiners=60, items=1)
    await open_gift(db, order_id)
    wechat_fake.expire_token_after_sends(20)
    worker = make_worker(concurrency=8)
    counts = await run_until_settled(worker, db, order_id)
    assert counts["sent"] == 60
    assert len(wechat_fake.stable_token_calls(forced=False)) == 1  # the first token
    assert len(wechat_fake.stable_token_calls(forced=True)) == 1  # the one refresh
    assert Counter(m["touser"] for m in wechat_fake.delivered) == Counter(subscribers)
    assert worker.stats.token_replacements >= 1


@pytest.mark.gen_test(timeout=60)
async def test_busy_and_server_errors_are_retried_and_refusals_are_final(db, wechat_fake, make_worker):
    order_id, subscribers = await timed_gift(db, joiners=1, items=1)
    await open_gift(db, order_id)
    path = "/cgi-bin/message/subscribe/send"
    wechat_fake.fail_next(path, {"errcode": -1, "errmsg": "system error"})
    wechat_fake.fail_next(path, 502)
    wechat_fake.fail_next(path, {"errcode": 45009, "errmsg": "reach max api daily quota limit"})
    wechat_fake.fail_next(path, {"errcode": 47003, "errmsg": "argument invalid! data.thing1.value invalid"})
    worker = make_worker(concurrency=1)
    counts = await run_until_settled(worker, db, order_id)
    assert counts == {"pending": 0, "sending": 0, "sent": 0, "not_subscribed": 1, "failed": 1}
    failed = await db.notifications.find_one({"order_id": order_id, "status": "failed"})
    assert failed["attempts"] == 4 and "data.thing1" in failed["last_error"]
    assert worker.stats.retried == 3


@pytest.mark.gen_test(timeout=60)
async def test_43101_is_recorded_as_not_subscribed_and_never_retried(db, wechat_fake, make_worker):
    order_id, subscribers = await timed_gift(db, joiners=2, items=1)
    await open_gift(db, order_id)
    wechat_fake.refuse(subscribers[0])
    counts = await run_until_settled(make_worker(), db, order_id)
    assert counts["sent"] == 1 and counts["not_subscribed"] == 2
    refused = await db.notifications.find_one({"touser": subscribers[0]})
    assert refused["status"] == "not_subscribed" and refused["attempts"] == 1
    assert refused["last_error"].startswith("43101")
    sends = [c for c in wechat_fake.calls["/cgi-bin/message/subscribe/send"]
             if subscribers[0].encode() in c["body"]]
    assert len(sends) == 1


@pytest.mark.gen_test(timeout=60)
async def test_a_timed_out_send_is_retried(db, wechat_fake, make_worker, wechat):
    order_id, subscribers = await timed_gift(db, joiners=1, items=1)
    await open_gift(db, order_id)
    wechat.timeout = 0.5
    wechat_fake.slow_seconds = 1.5
    wechat_fake.fail_next("/cgi-bin/message/subscribe/send", "timeout")
    worker = make_worker()
    counts = await run_until_settled(worker, db, order_id)
    assert counts["sent"] == 1
    entry = await db.notifications.find_one({"touser": subscribers[0]})
    assert entry["attempts"] == 2 and worker.stats.by_error == {"network": 1}


@pytest.mark.gen_test(timeout=60)
async def test_an_entry_that_keeps_failing_ends_failed_after_max_attempts(db, wechat_fake, make_worker):
    order_id, subscribers = await timed_gift(db, joiners=1, items=1)
    await open_gift(db, order_id)
    wechat_fake.fail_next("/cgi-bin/message/subscribe/send", 503, times=10)
    counts = await run_until_settled(make_worker(max_attempts=3), db, order_id)
    assert counts["failed"] == 1 and wechat_fake.delivered == []
    entry = await db.notifications.find_one({"touser": subscribers[0]})
    assert entry["attempts"] == 3 and "gave up after 3 attempts" in entry["last_error"]


@pytest.mark.gen_test(timeout=60)
async def test_a_long_wish_is_cut_to_the_field_limits_and_still_delivered(db, wechat_fake, make_worker):
    wish = "祝你新年快乐万事如意身体健康阖家幸福心想事成财源广进" * 3
    order_id, subscribers = await timed_gift(db, joiners=2, items=1, wish=wish)
    await open_gift(db, order_id)
    counts = await run_until_settled(make_worker(), db, order_id)
    assert counts["sent"] == 2 and counts["failed"] == 0
    lost = [m for m in wechat_fake.delivered if m["template_id"] == "tpl_lost"]
    assert lost[0]["data"]["thing1"]["value"] == wish[:19] + "…"


@pytest.mark.gen_test(timeout=60)
async def test_two_workers_sharing_the_outbox_send_each_message_once(db, wechat_fake, make_worker):
    order_id, subscribers = await timed_gift(db, joiners=200, items=3)
    await open_gift(db, order_id)
    wechat_fake.send_delay = 0.005
    first, second = make_worker(concurrency=4), make_worker(concurrency=4)
    first.records.page_size = second.records.page_size = 20  # ten pages to share
    first.start()
    second.start()
    await settled(db, order_id)
    assert Counter(m["touser"] for m in wechat_fake.delivered) == Counter(subscribers)
    assert first.stats.sent > 0 and second.stats.sent > 0
    assert first.stats.sent + second.stats.sent == 200


@pytest.mark.gen_test(timeout=60)
async def test_a_direct_gift_join_gets_one_gift_received_message(db, gifts, wechat_fake, make_worker):
    gift = await gifts.create(spec("direct", ["口红", "香水"], sender="o_boss", wish="拿去吧"))
    await db.members.update_one({"_id": gift["sender_id"]}, {"$set": {"nickname": "一个名字特别特别特别长的发起人"}})
    await db.gifts.update_one({"_id": gift["_id"]}, {"$set": {"sender.name": "一个名字特别特别特别长的发起人"}})
    a = await gifts.accounts.ensure_member("o_a")
    b = await gifts.accounts.ensure_member("o_b")
    await gifts.join(gift["_id"], a, subscribed=["tpl_received"])
    await gifts.join(gift["_id"], b)
    worker = make_worker()
    worker.start()
    async def all_handled() -> bool:
        return await db.notifications.count_documents({"status": {"$in": ["pending", "sending"]}}) == 0 \
            and await db.joins.count_documents({"notify": "pending"}) == 0
    await until(all_handled)
    await worker.stop()
    assert [m["touser"] for m in wechat_fake.delivered] == ["o_a"]
    data = wechat_fake.delivered[0]["data"]
    assert data["thing1"]["value"] == "口红" and data["name2"]["value"] == "一个名字特别特别特别"
    assert await db.notifications.find_one({"member_id": b, "status": "not_subscribed"})
    assert await db.joins.count_documents({"notify": "done"}) == 2
    # Expanding again (a retried worker) adds nothing.
    await db.joins.update_many({}, {"$set": {"notify": "pending"}})
    await worker.records.expand_direct_joins()
    assert await db.notifications.count_documents({}) == 2


@pytest.mark.gen_test(timeout=60)
async def test_the_sender_gets_a_summary_when_they_accepted_it(db, wechat_fake, make_worker):
    order_id, subscribers = await timed_gift(db, joiners=4, items=2, subscribed_every=100)
    await db.gifts.update_one({"_id": order_id}, {"$set": {"sender_subscribed": ["tpl_summary"]}})
    await open_gift(db, order_id)
    counts = await run_until_settled(make_worker(), db, order_id)
    assert counts["sent"] == 2 and counts["not_subscribed"] == 3
    summary = [m for m in wechat_fake.delivered if m["template_id"] == "tpl_summary"]
    assert summary[0]["touser"] == "o_j_sender"
    assert summary[0]["data"]["number2"]["value"] == "4" and summary[0]["data"]["number3"]["value"] == "2"


@pytest.mark.gen_test(timeout=60)
async def test_a_legacy_join_with_subscribed_leads_to_one_message(api, db, wechat_fake, make_worker):
    order_id = await api.create_gift(method="direct", items=[{"name": "围巾"}, {"name": "手套"}])
    key = await api.login("gina")
    answer = await api.legacy("/api/sharagift/JoinGift", {"login_key": key, "order_id": order_id,
                                                          "subscribed": ["tpl_received"]})
    assert answer["code"] == "suc"
    worker = make_worker()
    worker.start()
    async def delivered() -> bool:
        return bool(wechat_fake.delivered) and await db.joins.count_documents({"notify": "pending"}) == 0
    await until(delivered)
    await worker.stop()
    assert [(m["touser"], m["template_id"]) for m in wechat_fake.delivered] == [("o_gina", "tpl_received")]
    assert wechat_fake.delivered[0]["data"]["thing1"]["value"] == "围巾"


@pytest.mark.gen_test(timeout=90)
async def test_an_entry_in_flight_under_a_live_lease_is_never_sent_by_another_worker(
        db, wechat_fake, make_worker):
    order_id, subscribers = await timed_gift(db, joiners=24, items=2)
    await open_gift(db, order_id)
    # Slow answers keep every claimed entry in flight (status `sending`, live lease) while the
    # other worker polls the outbox many times over.
    wechat_fake.send_delay = 0.3
    first = make_worker(concurrency=4, lease=timedelta(seconds=60))
    second = make_worker(concurrency=4, lease=timedelta(seconds=60))
    first.start()
    second.start()
    await settled(db, order_id)
    assert Counter(m["touser"] for m in wechat_fake.delivered) == Counter(subscribers)
    assert [e["_id"] async for e in db.notifications.find({"attempts": {"$ne": 1}, "status": "sent"})] == []
    assert first.stats.sent + second.stats.sent == 24


@pytest.mark.gen_test(timeout=90)
async def test_entries_left_in_flight_by_a_worker_that_died_are_sent_once_its_lease_lapses(
        db, wechat_fake, make_worker):
    # What a worker that dies mid-send leaves: its page's entries made claimed for itself, under
    # a lease that lapses a second later.
    order_id, subscribers, held = await entries_held_by(db, make_worker, "dead-worker", timedelta(seconds=1))
    make_worker().start()
    await settled(db, order_id)
    assert Counter(m["touser"] for m in wechat_fake.delivered) == Counter(subscribers)
    assert [e["attempts"] async for e in db.notifications.find({"_id": {"$in": held}})] == [2] * len(held)
    assert len(held) >= len(subscribers)


@pytest.mark.gen_test(timeout=90)
async def test_a_claimed_entry_is_next_due_at_its_lease_end_so_only_lapsed_claims_are_read_back(
        db, wechat_fake, make_worker):
    order_id, _ = await timed_gift(db, joiners=6, items=2)
    await open_gift(db, order_id)
    # Slow answers keep the claimed entries in flight under a live lease.
    wechat_fake.send_delay = 1.0
    worker = make_worker(concurrency=2, lease=timedelta(seconds=60))
    worker.start()
    in_flight = await until(lambda: db.notifications.find({"order_id": order_id, "status": "sending"}).to_list(),
                            timeout=30)
    now = clock.utcnow()
    assert all(e["next_attempt_at"] == e["lease_until"] > now for e in in_flight)
    assert await db.notifications.count_documents({"status": "sending", "next_attempt_at": {"$lt": now}}) == 0
    assert await store.lapsed(db, now, 100) == []


@pytest.mark.gen_test(timeout=90)
async def test_an_entry_an_earlier_version_claimed_is_taken_over_only_once_its_lease_lapses(
        db, wechat_fake, make_worker):
    order_id, subscribers, held = await entries_held_by(db, make_worker, "old-worker", timedelta(seconds=60))
    # An earlier version's claim left the entry's due time, long past, as its next attempt.
    await db.notifications.update_many({"_id": {"$in": held}},
                                       {"$set": {"next_attempt_at": clock.utcnow() - timedelta(minutes=5)}})
    worker = make_worker()
    for _ in range(3):
        await worker.deliver_once()
    assert wechat_fake.delivered == []
    assert {e["lease_owner"] async for e in db.notifications.find({"_id": {"$in": held}})} == {"old-worker"}
    await db.notifications.update_many({"_id": {"$in": held}},
                                       {"$set": {"lease_until": clock.utcnow() - timedelta(seconds=1)}})
    worker.start()
    await settled(db, order_id)
    assert Counter(m["touser"] for m in wechat_fake.delivered) == Counter(subscribers)


@pytest.mark.gen_test(timeout=60)
async def test_a_stopping_worker_gives_back_the_entries_it_claimed_and_did_not_send(db, wechat_fake, make_worker):
    order_id, subscribers = await timed_gift(db, joiners=20, items=2)
    await open_gift(db, order_id)
    # One request at a time, slowly: the stop comes while most of a claimed slice is unsent.
    wechat_fake.send_delay = 0.2
    worker = make_worker(concurrency=1, lease=timedelta(seconds=60))
    worker.start()
    await until(lambda: len(wechat_fake.delivered) >= 4, timeout=30)  # past the two winners' page
    await worker.stop()
    entries = await db.notifications.find({"order_id": order_id, "kind": {"$ne": "gift_summary"}}).to_list()
    assert [e["_id"] for e in entries if e["status"] == "sending"] == []  # none left held for the lease
    sent = {e["touser"] for e in entries if e["status"] == "sent"}
    unsent = [e for e in entries if e["status"] == "pending"]
    assert sent == {m["touser"] for m in wechat_fake.delivered} and unsent
    assert {e["attempts"] for e in unsent} == {0} and all(e["lease_owner"] is None for e in unsent)
    # Another worker sends the rest at once, each once.
    await run_until_settled(make_worker(), db, order_id)
    assert Counter(m["touser"] for m in wechat_fake.delivered) == Counter(subscribers)
