"""After the draw: a winner claims the prize with an address (theirs alone to see), the operator
ships it, and whatever nobody receives is refunded to the buyer exactly once. Every scenario ends
with the money invariant (tests/shop.py check_money)."""
import asyncio
from datetime import timedelta

import pytest

from lottery import clock
from lottery.accounts import member_id_for
from lottery.refunds import Refunds
from tests.gifts import make_due
from tests.shop import ADDRESS, bought_gift, check_money, product
from tests.waiting import until


@pytest.fixture
def app(build_app, payments):
    return build_app(payments=payments)


@pytest.fixture
def refunds(db, payments) -> Refunds:
    """A refund worker as the scheduler runs one, with WeChat Pay's spacing and query delay
    shortened for tests."""
    return Refunds(db, payments, backoff_base=0.05, backoff_cap=0.2, spacing=timedelta(0),
                   query_after=timedelta(milliseconds=200))


@pytest.fixture
def pay_fake(pay_fake):
    pay_fake.refund_interval = 0  # tests make several refunds of one order within a minute
    return pay_fake


async def drain(refunds: Refunds, pay_fake, db) -> None:
    """Run refund rounds, completing each refund at WeChat Pay (its notify reaches the app),
    until every refund has ended."""
    async def ended() -> bool:
        await refunds.run_once()
        for record in await db.refunds.find({"status": "processing"}).to_list():
            if pay_fake.refunds.get(record["_id"], {}).get("status") == "PROCESSING":
                await pay_fake.complete_refund(record["_id"], "SUCCESS")
        unplanned = await db.gifts.count_documents({"order.refund_unbatched": {"$gt": 0}})
        open_ = await db.refunds.count_documents({"status": {"$in": ["pending", "sending", "processing"]}})
        return unplanned == 0 and open_ == 0
    await until(ended, timeout=60, interval=0.1)


async def open_full_gift_at_deadline(app, db, order_id: str) -> None:
    await make_due(db, order_id)
    assert await app.settings["draws"].sweep() == 1


async def claims_opened(app) -> None:
    await app.settings["claims"].sweep()


@pytest.mark.gen_test(timeout=120)
async def test_a_full_gift_short_of_joiners_at_its_deadline_refunds_its_unwon_items_once(api, app, db, pay_fake, refunds):
    cup, tea = await product(api, "保温杯", 12900, 10), await product(api, "奶茶券", 1800, 10)
    buyer = await api.login("buyer")
    order_id = await bought_gift(api, pay_fake, buyer, (cup, 1), (tea, 2), method="full", open_number=5)
    await api.join(await api.login("only"), order_id)
    await open_full_gift_at_deadline(app, db, order_id)
    await check_money(db)
    await drain(refunds, pay_fake, db)
    [refund] = pay_fake.refunds_of(order_id)
    gift = await db.gifts.find_one({"_id": order_id})
    won = gift["draw"]["winners"]
    assert len(won) == 1 and refund["refund"] == 12900 + 2 * 1800 - gift["items"][0]["price"]
    status, seen = await api.request("GET", f"/api/v1/orders/{order_id}", token=buyer)
    assert seen["status"] == "partially_refunded" and seen["amount_refunded"] == refund["refund"]
    await check_money(db)
    await drain(refunds, pay_fake, db)  # nothing more, however often it runs
    assert len(pay_fake.refunds_of(order_id)) == 1


@pytest.mark.gen_test(timeout=120)
async def test_a_timed_gift_refunds_the_items_beyond_its_participants(api, app, db, pay_fake, refunds):
    box = await product(api, "礼盒", 5000, 10)
    buyer = await api.login("buyer")
    open_at = (clock.utcnow() + timedelta(hours=2)).isoformat()
    order_id = await bought_gift(api, pay_fake, buyer, (box, 3), method="timed", open_at=open_at)
    for name in ("a", "b"):
        await api.join(await api.login(name), order_id)
    await make_due(db, order_id)
    assert await app.settings["draws"].sweep() == 1
    await drain(refunds, pay_fake, db)
    assert [r["refund"] for r in pay_fake.refunds_of(order_id)] == [5000]
    await check_money(db)


@pytest.mark.gen_test(timeout=120)
async def test_a_direct_gifts_items_left_at_its_deadline_are_refunded(api, app, db, pay_fake, refunds):
    tea = await product(api, "奶茶券", 1800, 10)
    buyer = await api.login("buyer")
    order_id = await bought_gift(api, pay_fake, buyer, (tea, 4), method="direct")
    status, joined = await api.join(await api.login("first"), order_id)
    assert status == 200 and joined["me"]["state"] == "won"
    await make_due(db, order_id)
    assert await app.settings["draws"].sweep() == 1
    gift = await db.gifts.find_one({"_id": order_id})
    assert gift["status"] == "finished" and gift["draw"]["returned"] == [1, 2, 3]
    assert (await api.join(await api.login("late"), order_id))[0] == 410
    await drain(refunds, pay_fake, db)
    assert [r["refund"] for r in pay_fake.refunds_of(order_id)] == [3 * 1800]
    await check_money(db)


@pytest.mark.gen_test(timeout=120)
async def test_an_unclaimed_prize_past_its_deadline_is_reminded_once_then_refunded(api, app, db, pay_fake, refunds):
    tea = await product(api, "奶茶券", 1800, 10)
    buyer = await api.login("buyer")
    order_id = await bought_gift(api, pay_fake, buyer, (tea, 2), method="direct")
    winner, claimer = await api.login("winner"), await api.login("claimer")
    await api.join(winner, order_id)
    await api.join(claimer, order_id)
    await claims_opened(app)
    assert (await api.request("POST", f"/api/v1/gifts/{order_id}/claim", ADDRESS, token=claimer))[0] == 200
    # The first winner's reminder is due, then the deadline passes.
    await db.claims.update_many({"order_id": order_id, "status": "unclaimed"}, {"$set": {"remind_at": clock.utcnow()}})
    await claims_opened(app)
    await claims_opened(app)
    assert await db.outbox.count_documents({"kind": "message", "message": "claim_reminder"}) == 1
    await db.claims.update_many({"order_id": order_id}, {"$set": {"deadline_at": clock.utcnow() - timedelta(seconds=1)}})
    await claims_opened(app)
    statuses = {c["winner_id"]: c["status"] for c in await db.claims.find({"order_id": order_id}).to_list()}
    assert sorted(statuses.values()) == ["claimed", "expired"]  # a claimed prize never expires
    await drain(refunds, pay_fake, db)
    assert [r["refund"] for r in pay_fake.refunds_of(order_id)] == [1800]
    await check_money(db)
    status, prizes = await api.request("GET", "/api/v1/me/prizes", token=winner)
    assert status == 200 and [p["status"] for p in prizes["prizes"]] == ["expired"]


@pytest.mark.gen_test(timeout=120)
async def test_an_order_paid_after_it_was_closed_is_refunded_whole(api, app, db, pay_fake, refunds):
    tea = await product(api, "奶茶券", 1800, 10)
    buyer = await api.login("buyer")
    status, created = await api.request("POST", "/api/v1/orders", {
        "items": [{"product_id": tea, "quantity": 3}], "method": "direct"}, token=buyer)
    order_id = created["order_id"]
    await db.gifts.update_one({"_id": order_id}, {"$set": {"due_at": clock.utcnow() - timedelta(seconds=1)}})
    assert await app.settings["orders"].sweep() == 1  # closed at WeChat Pay
    # The buyer's payment went through anyway (as around a time_expire): its notify, three times.
    pay_fake.set_trade_state(order_id, "NOTPAY")
    await pay_fake.pay(order_id, notify=False)
    await pay_fake.send_notify(order_id, copies=3)
    await drain(refunds, pay_fake, db)
    assert [r["refund"] for r in pay_fake.refunds_of(order_id)] == [5400]
    status, seen = await api.request("GET", f"/api/v1/orders/{order_id}", token=buyer)
    assert seen["status"] == "refunded" and seen["amount_refunded"] == 5400
    await check_money(db)


@pytest.mark.gen_test(timeout=120)
async def test_a_refund_whose_first_attempts_fail_is_refunded_once(api, app, db, pay_fake, refunds):
    cup = await product(api, "保温杯", 12900, 10)
    buyer = await api.login("buyer")
    order_id = await bought_gift(api, pay_fake, buyer, (cup, 2), method="full", open_number=5)
    await api.join(await api.login("one"), order_id)
    # A 5xx, WeChat Pay's own SYSTEM_ERROR, then a request it applied whose answer was lost.
    for failure in (502, "SYSTEM_ERROR", "apply_then_timeout"):
        pay_fake.fail_next("/v3/refund/domestic/refunds", failure)
    refunds.gateway.timeout = 1
    pay_fake.slow_seconds = 3
    await open_full_gift_at_deadline(app, db, order_id)
    await drain(refunds, pay_fake, db)
    [refund] = pay_fake.refunds_of(order_id)
    assert refund["refund"] == 12900
    record = await db.refunds.find_one({"order_id": order_id})
    assert record["status"] == "success" and record["attempts"] == 4
    await check_money(db)


@pytest.mark.gen_test(timeout=120)
async def test_two_refund_workers_racing_send_each_refund_once(api, app, db, pay_fake, payments):
    box = await product(api, "礼盒", 5000, 100)
    buyer = await api.login("buyer")
    orders = [await bought_gift(api, pay_fake, buyer, (box, 2), method="full", open_number=3, wish=f"礼物{i}")
              for i in range(6)]
    for order_id in orders:
        await make_due(db, order_id)
    assert await app.settings["draws"].sweep() == 6
    workers = [Refunds(db, payments, spacing=timedelta(0), query_after=timedelta(milliseconds=100)) for _ in range(2)]
    await asyncio.gather(*(w.run_once() for w in workers for _ in range(3)))
    for order_id in orders:
        assert len(pay_fake.refunds_of(order_id)) == 1
    requests = pay_fake.requests_to("/v3/refund/domestic/refunds", "POST")
    assert len(requests) == 6  # no refund was even asked for twice
    await drain(workers[0], pay_fake, db)
    await check_money(db)


@pytest.mark.gen_test(timeout=120)
async def test_a_forged_refund_notify_changes_nothing(api, app, db, pay_fake, refunds):
    cup = await product(api, "保温杯", 12900, 10)
    order_id = await bought_gift(api, pay_fake, await api.login("buyer"), (cup, 1), method="full", open_number=5)
    await open_full_gift_at_deadline(app, db, order_id)
    await refunds.run_once()
    record = await db.refunds.find_one({"order_id": order_id})
    await pay_fake.complete_refund(record["_id"], "SUCCESS", notify=False)  # done; its notify lost
    deliveries = await pay_fake.send_refund_notify(record["_id"], fault="bad_signature")
    assert {d.status for d in deliveries} == {401}
    assert (await db.refunds.find_one({"_id": record["_id"]}))["status"] == "processing"
    await check_money(db)


@pytest.mark.gen_test(timeout=120)
async def test_the_winner_claims_with_an_address_only_they_and_the_operator_see(api, app, db, pay_fake):
    cup = await product(api, "保温杯", 12900, 10)
    buyer = await api.login("buyer")
    order_id = await bought_gift(api, pay_fake, buyer, (cup, 1), method="direct")
    winner, other = await api.login("winner"), await api.login("other")
    await api.join(winner, order_id)
    status, claim = await api.request("POST", f"/api/v1/gifts/{order_id}/claim", ADDRESS, token=winner)
    assert status == 200 and claim["status"] == "claimed" and claim["address"] == ADDRESS
    # The sender sees who (masked) and where it stands, never where it goes.
    status, seen = await api.request("GET", f"/api/v1/gifts/{order_id}/claims", token=buyer)
    assert status == 200 and seen["claims"][0]["status"] == "claimed" and seen["claims"][0]["winner"] == "微**户"
    assert "address" not in seen["claims"][0] and ADDRESS["telNumber"] not in str(seen)
    assert (await api.request("GET", f"/api/v1/gifts/{order_id}/claims", token=other))[0] == 403
    assert (await api.request("POST", f"/api/v1/gifts/{order_id}/claim", ADDRESS, token=other))[0] == 403
    assert (await api.request("POST", f"/api/v1/gifts/{order_id}/claim", ADDRESS, token=buyer))[0] == 403
    assert (await api.request("POST", f"/api/v1/gifts/{order_id}/claim", ADDRESS))[0] == 401
    status, others = await api.request("GET", "/api/v1/me/prizes", token=other)
    assert others == {"prizes": []}
    # The operator ships it; the address is then locked, and the winner is told.
    status, listed = await api.request("GET", "/api/admin/claims?status=claimed", token=api.admin_token)
    assert status == 200 and listed["claims"][0]["address"] == ADDRESS
    claim_id = listed["claims"][0]["claim_id"]
    status, shipped = await api.request("POST", f"/api/admin/claims/{claim_id}/ship",
                                        {"carrier": "顺丰", "tracking_no": "SF123"}, token=api.admin_token)
    assert status == 200 and shipped["status"] == "shipped"
    status, answer = await api.request("POST", f"/api/v1/gifts/{order_id}/claim", {**ADDRESS, "cityName": "深圳市"},
                                       token=winner)
    assert status == 409 and answer["error"]["code"] == "claim_locked"
    winner_id = (await db.claims.find_one({"_id": claim_id}))["winner_id"]
    assert await db.outbox.count_documents({"message": "prize_shipped", "member_id": winner_id}) == 1
    status, prizes = await api.request("GET", "/api/v1/me/prizes", token=winner)
    assert [(p["status"], p["tracking_no"]) for p in prizes["prizes"]] == [("shipped", "SF123")]
    status, seen = await api.request("GET", f"/api/v1/gifts/{order_id}/claims", token=buyer)
    [item] = seen["claims"]  # the sender sees it shipped, and by whom, but not the tracking number
    assert (item["status"], item["carrier"], item["tracking_no"]) == ("shipped", "顺丰", None)
    assert "SF123" not in str(seen)
    status, done = await api.request("POST", f"/api/admin/claims/{claim_id}/delivered", {}, token=api.admin_token)
    assert status == 200 and done["status"] == "delivered"
    # Lists past shipping need no address in full.
    status, delivered = await api.request("GET", "/api/admin/claims?status=delivered", token=api.admin_token)
    [listed] = delivered["claims"]
    assert listed["address"]["telNumber"] == "*******8000" and listed["address"]["userName"] == "张*"
    assert ADDRESS["detailInfo"] not in str(delivered) and ADDRESS["telNumber"] not in str(delivered)
    await check_money(db)


@pytest.mark.gen_test(timeout=120)
async def test_twenty_racing_taps_make_one_claim(api, app, db, pay_fake):
    cup = await product(api, "保温杯", 12900, 10)
    order_id = await bought_gift(api, pay_fake, await api.login("buyer"), (cup, 1), method="direct")
    winner = await api.login("winner")
    await api.join(winner, order_id)
    bodies = [{**ADDRESS, "detailInfo": f"{i} 号"} for i in range(20)]
    answers = await asyncio.gather(*(api.request("POST", f"/api/v1/gifts/{order_id}/claim", b, token=winner)
                                     for b in bodies))
    assert {s for s, _ in answers} == {200}
    [claim] = await db.claims.find({"order_id": order_id}).to_list()
    assert claim["status"] == "claimed" and claim["address"]["detailInfo"] in {b["detailInfo"] for b in bodies}


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("change, code", [
    ({"telNumber": "12345"}, "invalid_input"),
    ({"telNumber": {"$ne": None}}, "invalid_input"),
    ({"userName": ""}, "missing_params"),
    ({"detailInfo": "x" * 121}, "invalid_input"),
    ({"detailInfo": "1号\u0000楼"}, "invalid_input"),
    ({"postalCode": "5100"}, "invalid_input"),
    ({"cityName": 5}, "invalid_input"),
])
async def test_a_malformed_address_is_refused_and_nothing_is_stored(api, app, db, pay_fake, change, code):
    cup = await product(api, "保温杯", 12900, 10)
    order_id = await bought_gift(api, pay_fake, await api.login("buyer"), (cup, 1), method="direct")
    winner = await api.login("winner")
    await api.join(winner, order_id)
    status, answer = await api.request("POST", f"/api/v1/gifts/{order_id}/claim", {**ADDRESS, **change}, token=winner)
    assert status == 400 and answer["error"]["code"] == code
    assert await db.claims.count_documents({"status": "claimed"}) == 0


@pytest.mark.gen_test(timeout=60)
async def test_claims_on_lost_or_unopened_gifts_and_shipping_an_unclaimed_item_are_refused(api, app, db, pay_fake):
    cup = await product(api, "保温杯", 12900, 10)
    order_id = await bought_gift(api, pay_fake, await api.login("buyer"), (cup, 1), method="full", open_number=2)
    a, b = await api.login("a"), await api.login("b")
    await api.join(a, order_id)
    status, answer = await api.request("POST", f"/api/v1/gifts/{order_id}/claim", ADDRESS, token=a)
    assert status == 403 and answer["error"]["code"] == "not_winner"  # not opened yet
    await api.join(b, order_id)
    await app.settings["draws"].idle()
    gift = await db.gifts.find_one({"_id": order_id})
    winner_key, loser = (a, b) if gift["draw"]["winners"] == [member_id_for("o_a")] else (b, a)
    status, answer = await api.request("POST", f"/api/v1/gifts/{order_id}/claim", ADDRESS, token=loser)
    assert status == 403 and answer["error"]["code"] == "not_winner"
    await claims_opened(app)
    [claim] = await db.claims.find({"order_id": order_id}).to_list()
    status, answer = await api.request("POST", f"/api/admin/claims/{claim['_id']}/ship",
                                       {"carrier": "顺丰", "tracking_no": "1"}, token=api.admin_token)
    assert status == 409 and answer["error"]["code"] == "wrong_claim_state"
    assert (await api.request("POST", f"/api/v1/gifts/{order_id}/claim", ADDRESS, token=winner_key))[0] == 200
    assert (await api.request("POST", "/api/admin/claims/nope:1/ship", {"carrier": "a", "tracking_no": "1"},
                              token=api.admin_token))[0] == 404


@pytest.mark.gen_test(timeout=120)
async def test_duplicate_refund_notifies_and_a_query_at_once_end_the_refund_once(api, app, db, pay_fake, refunds):
    cup = await product(api, "保温杯", 12900, 10)
    buyer = await api.login("buyer")
    order_id = await bought_gift(api, pay_fake, buyer, (cup, 2), method="full", open_number=5)
    await open_full_gift_at_deadline(app, db, order_id)
    await refunds.run_once()
    record = await db.refunds.find_one({"order_id": order_id})
    await pay_fake.complete_refund(record["_id"], "SUCCESS", notify=False)
    await db.refunds.update_one({"_id": record["_id"]}, {"$set": {"next_attempt_at": clock.utcnow()}})
    deliveries, _ = await asyncio.gather(pay_fake.send_refund_notify(record["_id"], copies=5), refunds.check_processing())
    assert {d.status for d in deliveries} == {204}
    status, seen = await api.request("GET", f"/api/v1/orders/{order_id}", token=buyer)
    assert seen["status"] == "refunded" and seen["amount_refunded"] == 2 * 12900 and seen["amount_refunding"] == 0
    assert await db.outbox.count_documents({"message": "gift_refunded"}) == 1
    await check_money(db)


@pytest.mark.gen_test(timeout=60)
async def test_the_winner_reads_their_claim_from_the_moment_they_win_and_only_they_do(api, app, db, pay_fake):
    cup = await product(api, "保温杯", 12900, 10)
    buyer = await api.login("buyer")
    order_id = await bought_gift(api, pay_fake, buyer, (cup, 1), method="direct")
    winner, other = await api.login("winner"), await api.login("other")
    await api.join(winner, order_id)
    # Before the background opened the claim, it reads as it will be opened.
    assert await db.claims.count_documents({}) == 0
    status, claim = await api.request("GET", f"/api/v1/gifts/{order_id}/claim", token=winner)
    assert status == 200 and claim["status"] == "unclaimed" and "address" not in claim
    assert claim["claim_id"] == f"{order_id}:0" and claim["item"]["name"] == "保温杯"
    await claims_opened(app)
    status, opened = await api.request("GET", f"/api/v1/gifts/{order_id}/claim", token=winner)
    assert opened == claim
    await api.request("POST", f"/api/v1/gifts/{order_id}/claim", ADDRESS, token=winner)
    status, claimed = await api.request("GET", f"/api/v1/gifts/{order_id}/claim", token=winner)
    assert claimed["status"] == "claimed" and claimed["address"] == ADDRESS
    assert claimed["deadline_at"] == claim["deadline_at"]
    for key, code in ((other, 403), (buyer, 403), (None, 401)):
        assert (await api.request("GET", f"/api/v1/gifts/{order_id}/claim", token=key))[0] == code


@pytest.mark.gen_test(timeout=120)
async def test_the_sender_sees_items_won_moments_ago_and_where_the_orders_refunds_stand(
        api, app, db, pay_fake, refunds):
    cup, tea = await product(api, "保温杯", 12900, 10), await product(api, "奶茶券", 1800, 10)
    buyer = await api.login("buyer")
    order_id = await bought_gift(api, pay_fake, buyer, (cup, 1), (tea, 1), method="full", open_number=5)
    await api.join(await api.login("only"), order_id)
    await open_full_gift_at_deadline(app, db, order_id)
    # Drawn, its claim not opened yet, nothing refunded yet: listed all the same.
    status, seen = await api.request("GET", f"/api/v1/gifts/{order_id}/claims", token=buyer)
    assert status == 200 and [(c["item_index"], c["status"], c["winner"]) for c in seen["claims"]] == [(0, "unclaimed", "微**户")]
    assert seen["refunds"] == []
    assert seen["order"] == {"status": "paid", "amount_total": 14700, "amount_refunded": 0, "amount_refunding": 0,
                             "amount_to_refund": 1800}
    await claims_opened(app)
    await drain(refunds, pay_fake, db)
    status, seen = await api.request("GET", f"/api/v1/gifts/{order_id}/claims", token=buyer)
    assert [(c["item_index"], c["status"]) for c in seen["claims"]] == [(0, "unclaimed")]
    assert [(r["amount"], r["items"], r["status"]) for r in seen["refunds"]] == [(1800, [1], "success")]
    assert seen["order"] == {"status": "partially_refunded", "amount_total": 14700, "amount_refunded": 1800,
                             "amount_refunding": 0, "amount_to_refund": 0}


@pytest.mark.gen_test(timeout=60)
async def test_the_sender_sees_a_direct_gifts_recipients_before_their_claims_open(api, app, db, pay_fake):
    tea = await product(api, "奶茶券", 1800, 10)
    buyer = await api.login("buyer")
    order_id = await bought_gift(api, pay_fake, buyer, (tea, 3), method="direct")
    for name in ("a", "b"):
        await api.join(await api.login(name), order_id)
    status, seen = await api.request("GET", f"/api/v1/gifts/{order_id}/claims", token=buyer)
    assert [(c["item_index"], c["status"]) for c in seen["claims"]] == [(0, "unclaimed"), (1, "unclaimed")]
    await claims_opened(app)
    status, again = await api.request("GET", f"/api/v1/gifts/{order_id}/claims", token=buyer)
    assert again["claims"] == seen["claims"]
