"""Refunds in the domain, against the real database and the local WeChat Pay: what a buyer paid for
and nobody received (items nobody won, a direct gift's items left at its deadline, a prize
unclaimed past its deadline, an order paid after it was closed) goes back exactly once, whatever
fails, races or repeats on the way. Each scenario ends with the money invariant (tests/shop.py
check_money)."""
import asyncio
from datetime import timedelta

import pytest

from lottery import clock
from lottery.errors import GiftClosed, InvalidInput, RefundMismatch
from lottery.notifications import Notifications
from lottery.orders import OrderLine, OrderSpec, order_view
from lottery.refunds import MAX_REFUNDS, Refunds, refund_worker
from lottery.storage import orders as order_store
from lottery.storage import refunds as refund_store
from tests.gifts import make_due
from tests.shop import check_money, drain, give_address, listed, paid_gift, verified
from tests.waiting import until
from wechatpay.client import WeChatPayClient


@pytest.fixture
def pay_fake(pay_fake):
    pay_fake.refund_interval = 0  # tests make several refunds of one order within a minute
    return pay_fake


@pytest.fixture
def refunds(db, payments) -> Refunds:
    """A refund worker as the scheduler runs one, with WeChat Pay's spacing and query delay
    shortened for tests."""
    return Refunds(db, payments, backoff_base=0.05, backoff_cap=0.2, spacing=timedelta(0),
                   query_after=timedelta(milliseconds=200))


async def member(gifts, name: str) -> str:
    return await gifts.accounts.ensure_member(f"o_{name}")


async def drawn_at_deadline(drawer, db, order_id: str) -> None:
    """The gift's deadline (or open time) comes, and the draw's sweep opens it."""
    await make_due(db, order_id)
    assert await drawer().sweep() == 1


async def refund_sent(db, gifts, drawer, orders, pay_fake, refunds, cups: int = 1) -> tuple[str, str, dict]:
    """A buyer's full gift of `cups` 129-yuan cups, unfilled at its deadline, its refund sent to
    WeChat Pay by one worker round: (buyer, order id, the refund record)."""
    cup = await listed(db, "保温杯", 12900, 10)
    buyer = await member(gifts, "buyer")
    order_id = await paid_gift(orders, pay_fake, buyer, (cup, cups), method="full", open_number=5)
    await drawn_at_deadline(drawer, db, order_id)
    await refunds.run_once()
    return buyer, order_id, await db.refunds.find_one({"order_id": order_id})


# -- what nobody received is refunded -------------------------------------------------------------

@pytest.mark.gen_test(timeout=120)
async def test_a_full_gift_short_of_joiners_at_its_deadline_refunds_its_unwon_items_once(
        db, gifts, drawer, orders, pay_fake, refunds):
    cup, tea = await listed(db, "保温杯", 12900, 10), await listed(db, "奶茶券", 1800, 10)
    buyer = await member(gifts, "buyer")
    order_id = await paid_gift(orders, pay_fake, buyer, (cup, 1), (tea, 2), method="full", open_number=5)
    await gifts.join(order_id, await member(gifts, "only"))
    await drawn_at_deadline(drawer, db, order_id)
    await check_money(db)
    await drain(refunds, pay_fake, db)
    [refund] = pay_fake.refunds_of(order_id)
    gift = await db.gifts.find_one({"_id": order_id})
    won = gift["draw"]["winners"]
    assert len(won) == 1 and refund["refund"] == 12900 + 2 * 1800 - gift["items"][0]["price"]
    seen = order_view(await orders.order_of(order_id, buyer))
    assert seen["status"] == "partially_refunded" and seen["amount_refunded"] == refund["refund"]
    await check_money(db)
    await drain(refunds, pay_fake, db)  # nothing more, however often it runs
    assert len(pay_fake.refunds_of(order_id)) == 1


@pytest.mark.gen_test(timeout=120)
async def test_a_timed_gift_refunds_the_items_beyond_its_participants(db, gifts, drawer, orders, pay_fake, refunds):
    box = await listed(db, "礼盒", 5000, 10)
    buyer = await member(gifts, "buyer")
    order_id = await paid_gift(orders, pay_fake, buyer, (box, 3), method="timed",
                               open_at=clock.utcnow() + timedelta(hours=2))
    for name in ("a", "b"):
        await gifts.join(order_id, await member(gifts, name))
    await drawn_at_deadline(drawer, db, order_id)
    await drain(refunds, pay_fake, db)
    assert [r["refund"] for r in pay_fake.refunds_of(order_id)] == [5000]
    await check_money(db)


@pytest.mark.gen_test(timeout=120)
async def test_a_direct_gifts_items_left_at_its_deadline_are_refunded(db, gifts, drawer, orders, pay_fake, refunds):
    tea = await listed(db, "奶茶券", 1800, 10)
    buyer = await member(gifts, "buyer")
    order_id = await paid_gift(orders, pay_fake, buyer, (tea, 4), method="direct")
    joined = await gifts.join(order_id, await member(gifts, "first"))
    assert joined.state == "won"
    await drawn_at_deadline(drawer, db, order_id)
    gift = await db.gifts.find_one({"_id": order_id})
    assert gift["status"] == "finished" and gift["draw"]["returned"] == [1, 2, 3]
    with pytest.raises(GiftClosed):  # what the refund pays back is given to nobody after
        await gifts.join(order_id, await member(gifts, "late"))
    await drain(refunds, pay_fake, db)
    assert [r["refund"] for r in pay_fake.refunds_of(order_id)] == [3 * 1800]
    await check_money(db)


@pytest.mark.gen_test(timeout=120)
async def test_an_unclaimed_prize_past_its_deadline_is_reminded_once_then_refunded(
        db, gifts, orders, claims, pay_fake, refunds):
    tea = await listed(db, "奶茶券", 1800, 10)
    buyer = await member(gifts, "buyer")
    order_id = await paid_gift(orders, pay_fake, buyer, (tea, 2), method="direct")
    winner, claimer = await member(gifts, "winner"), await member(gifts, "claimer")
    await gifts.join(order_id, winner)
    await gifts.join(order_id, claimer)
    await claims.sweep()
    assert (await give_address(claims, gifts, order_id, claimer))["status"] == "claimed"
    # The first winner's reminder is due, then the deadline passes.
    await db.claims.update_many({"order_id": order_id, "status": "unclaimed"}, {"$set": {"remind_at": clock.utcnow()}})
    await claims.sweep()
    await claims.sweep()
    assert await db.outbox.count_documents({"kind": "message", "message": "claim_reminder"}) == 1
    await db.claims.update_many({"order_id": order_id}, {"$set": {"deadline_at": clock.utcnow() - timedelta(seconds=1)}})
    await claims.sweep()
    statuses = {c["winner_id"]: c["status"] for c in await db.claims.find({"order_id": order_id}).to_list()}
    assert sorted(statuses.values()) == ["claimed", "expired"]  # a claimed prize never expires
    await drain(refunds, pay_fake, db)
    assert [r["refund"] for r in pay_fake.refunds_of(order_id)] == [1800]
    await check_money(db)
    assert [p["status"] for p in await claims.of_winner(winner)] == ["expired"]


@pytest.mark.gen_test(timeout=120)
async def test_an_order_paid_after_it_was_closed_is_refunded_whole(db, gifts, orders, payments, pay_fake, refunds):
    tea = await listed(db, "奶茶券", 1800, 10)
    buyer = await member(gifts, "buyer")
    order, _, _ = await orders.create(buyer, OrderSpec([OrderLine(tea, 3)], "direct"))
    order_id = order["_id"]
    await db.gifts.update_one({"_id": order_id}, {"$set": {"due_at": clock.utcnow() - timedelta(seconds=1)}})
    assert await orders.sweep() == 1  # closed at WeChat Pay
    # The buyer's payment went through anyway (as around a time_expire): its notify, three times.
    pay_fake.set_trade_state(order_id, "NOTPAY")
    await pay_fake.pay(order_id, notify=False)
    notices = verified(payments, await pay_fake.send_notify(order_id, copies=3))
    assert await asyncio.gather(*(orders.settle(n) for n in notices)) == ["paid_after_close"] * 3
    await drain(refunds, pay_fake, db)
    assert [r["refund"] for r in pay_fake.refunds_of(order_id)] == [5400]
    seen = order_view(await orders.order_of(order_id, buyer))
    assert seen["status"] == "refunded" and seen["amount_refunded"] == 5400
    await check_money(db)


# -- exactly once, whatever fails, races or repeats -----------------------------------------------

@pytest.mark.gen_test(timeout=120)
async def test_a_refund_whose_first_attempts_fail_is_refunded_once(db, gifts, drawer, orders, pay_fake, refunds):
    cup = await listed(db, "保温杯", 12900, 10)
    buyer = await member(gifts, "buyer")
    order_id = await paid_gift(orders, pay_fake, buyer, (cup, 2), method="full", open_number=5)
    await gifts.join(order_id, await member(gifts, "one"))
    # A 5xx, WeChat Pay's own SYSTEM_ERROR, then a request it applied whose answer was lost.
    for failure in (502, "SYSTEM_ERROR", "apply_then_timeout"):
        pay_fake.fail_next("/v3/refund/domestic/refunds", failure)
    refunds.gateway.timeout = 1
    pay_fake.slow_seconds = 3
    await drawn_at_deadline(drawer, db, order_id)
    await drain(refunds, pay_fake, db)
    [refund] = pay_fake.refunds_of(order_id)
    assert refund["refund"] == 12900
    record = await db.refunds.find_one({"order_id": order_id})
    assert record["status"] == "success" and record["attempts"] == 4
    await check_money(db)


@pytest.mark.gen_test(timeout=120)
async def test_two_refund_workers_racing_send_each_refund_once(db, gifts, drawer, orders, payments, pay_fake):
    box = await listed(db, "礼盒", 5000, 100)
    buyer = await member(gifts, "buyer")
    orders_ = [await paid_gift(orders, pay_fake, buyer, (box, 2), method="full", open_number=3, wish=f"礼物{i}")
               for i in range(6)]
    for order_id in orders_:
        await make_due(db, order_id)
    assert await drawer().sweep() == 6
    workers = [Refunds(db, payments, spacing=timedelta(0), query_after=timedelta(milliseconds=100)) for _ in range(2)]
    await asyncio.gather(*(w.run_once() for w in workers for _ in range(3)))
    for order_id in orders_:
        assert len(pay_fake.refunds_of(order_id)) == 1
    requests = pay_fake.requests_to("/v3/refund/domestic/refunds", "POST")
    assert len(requests) == 6  # no refund was even asked for twice
    await drain(workers[0], pay_fake, db)
    await check_money(db)


@pytest.mark.gen_test(timeout=120)
async def test_duplicate_refund_notifies_and_a_query_at_once_end_the_refund_once(
        db, gifts, drawer, orders, payments, pay_fake, refunds):
    buyer, order_id, record = await refund_sent(db, gifts, drawer, orders, pay_fake, refunds, cups=2)
    await pay_fake.complete_refund(record["_id"], "SUCCESS", notify=False)
    await db.refunds.update_one({"_id": record["_id"]}, {"$set": {"next_attempt_at": clock.utcnow()}})
    notices = verified(payments, await pay_fake.send_refund_notify(record["_id"], copies=5), expect="refund")
    *outcomes, _ = await asyncio.gather(*(refunds.settle(n) for n in notices), refunds.check_processing())
    assert outcomes.count("success") <= 1 and set(outcomes) <= {"success", None}  # duplicates change nothing
    seen = order_view(await orders.order_of(order_id, buyer))
    assert seen["status"] == "refunded" and seen["amount_refunded"] == 2 * 12900 and seen["amount_refunding"] == 0
    assert await db.outbox.count_documents({"message": "gift_refunded"}) == 1
    await check_money(db)


@pytest.mark.gen_test(timeout=120)
async def test_the_refund_worker_loop_refunds_by_itself_and_stops(db, gifts, drawer, orders, pay_fake, refunds):
    cup = await listed(db, "保温杯", 12900, 10)
    order_id = await paid_gift(orders, pay_fake, await member(gifts, "buyer"), (cup, 1), method="full", open_number=5)
    await drawn_at_deadline(drawer, db, order_id)
    pay_fake.refund_delay = 0.05  # WeChat Pay ends it by itself; the worker learns it by query
    worker = refund_worker(refunds, interval=0.05)
    worker.start()
    try:
        async def refunded() -> bool:
            return (await order_store.get(db, order_id))["order"].get("amount_refunded") == 12900
        await until(refunded, timeout=30, interval=0.05)
    finally:
        await worker.stop()
    assert not worker.running and [r["refund"] for r in pay_fake.refunds_of(order_id)] == [12900]
    assert (await db.refunds.find_one({"order_id": order_id}))["status"] == "success"
    await check_money(db)


# -- what needs the operator ----------------------------------------------------------------------

@pytest.mark.gen_test(timeout=120)
async def test_a_refund_wechat_pay_refuses_fails_for_good_and_is_listed_for_the_operator(
        db, gifts, drawer, orders, pay_fake, refunds):
    cup = await listed(db, "保温杯", 12900, 10)
    order_id = await paid_gift(orders, pay_fake, await member(gifts, "buyer"), (cup, 1), method="full", open_number=5)
    await drawn_at_deadline(drawer, db, order_id)
    pay_fake.fail_next("/v3/refund/domestic/refunds", "INVALID_REQUEST")
    await refunds.run_once()
    for _ in range(3):  # never asked again
        await db.refunds.update_many({}, {"$set": {"next_attempt_at": clock.utcnow()}})
        await refunds.run_once()
    assert len(pay_fake.requests_to("/v3/refund/domestic/refunds", "POST")) == 1
    assert pay_fake.refunds_of(order_id) == []
    listed_ = (await refunds.page("failed"))["refunds"]
    assert [(r["order_id"], r["amount"], r["attempts"]) for r in listed_] == [(order_id, 12900, 1)]
    assert "INVALID_REQUEST" in listed_[0]["last_error"]
    with pytest.raises(InvalidInput):
        await refunds.page("nonsense")


@pytest.mark.gen_test(timeout=120)
async def test_a_refund_wechat_pay_closes_gives_its_amount_back_from_refunding_and_tells_nobody(
        db, gifts, drawer, orders, payments, pay_fake, refunds):
    buyer, order_id, record = await refund_sent(db, gifts, drawer, orders, pay_fake, refunds)
    [notice] = verified(payments, await pay_fake.complete_refund(record["_id"], "CLOSED"), expect="refund")
    assert await refunds.settle(notice) == "closed"
    assert await refunds.settle(notice) is None
    seen = order_view(await orders.order_of(order_id, buyer))
    assert (seen["amount_refunded"], seen["amount_refunding"]) == (0, 0)
    assert [r["refund_no"] for r in (await refunds.page("closed"))["refunds"]] == [record["_id"]]
    assert await db.outbox.count_documents({"message": "gift_refunded"}) == 0


@pytest.mark.gen_test(timeout=120)
async def test_an_abnormal_refund_is_kept_for_the_operator_and_a_later_success_still_ends_it_once(
        db, gifts, drawer, orders, payments, pay_fake, refunds):
    buyer, order_id, record = await refund_sent(db, gifts, drawer, orders, pay_fake, refunds)
    [abnormal] = verified(payments, await pay_fake.complete_refund(record["_id"], "ABNORMAL"), expect="refund")
    before = clock.utcnow()
    assert await refunds.settle(abnormal) == "abnormal"
    assert await refunds.settle(abnormal) is None  # WeChat Pay says it again: applied once
    [listed_abnormal] = (await refunds.page("abnormal"))["refunds"]
    assert clock.parse_time(listed_abnormal["updated_at"]) >= before  # the operator sees when it changed
    seen = order_view(await orders.order_of(order_id, buyer))
    assert (seen["status"], seen["amount_refunding"]) == ("refunding", 12900)  # still owed
    assert [r["refund_no"] for r in (await refunds.page("abnormal"))["refunds"]] == [record["_id"]]
    success = {**abnormal, "refund_status": "SUCCESS"}  # the operator saw to it at WeChat Pay
    assert await asyncio.gather(refunds.settle(success), refunds.settle(success)) in (["success", None], [None, "success"])
    seen = order_view(await orders.order_of(order_id, buyer))
    assert (seen["status"], seen["amount_refunded"], seen["amount_refunding"]) == ("refunded", 12900, 0)
    await check_money(db)


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("fault", ["wrong_amount", "wrong_trade_no"])
async def test_a_refund_notify_whose_amount_or_order_differs_from_the_record_changes_nothing(
        db, gifts, drawer, orders, payments, pay_fake, refunds, caplog, fault):
    _, order_id, record = await refund_sent(db, gifts, drawer, orders, pay_fake, refunds)
    await pay_fake.complete_refund(record["_id"], "SUCCESS", notify=False)
    [forged] = verified(payments, await pay_fake.send_refund_notify(record["_id"], fault=fault), expect="refund")
    with pytest.raises(RefundMismatch):
        await refunds.settle(forged)
    assert (await db.refunds.find_one({"_id": record["_id"]}))["status"] == "processing"
    assert (await order_store.get(db, order_id))["order"]["amount_refunding"] == 12900
    assert "does not match the record" in caplog.text
    [true] = verified(payments, await pay_fake.send_refund_notify(record["_id"]), expect="refund")
    assert await refunds.settle(true) == "success"


@pytest.mark.gen_test(timeout=120)
async def test_a_refund_left_sending_by_a_worker_that_died_is_sent_once_its_lease_lapses(
        db, gifts, drawer, orders, pay_fake, refunds):
    cup = await listed(db, "保温杯", 12900, 10)
    order_id = await paid_gift(orders, pay_fake, await member(gifts, "buyer"), (cup, 1), method="full", open_number=5)
    await drawn_at_deadline(drawer, db, order_id)
    await refunds.plan()
    [record] = await db.refunds.find({"order_id": order_id}).to_list()
    now = clock.utcnow()  # a worker takes it for a moment, then its process dies
    assert await refund_store.claim(db, record, "a-dead-worker", now, now + timedelta(milliseconds=300))

    async def sent() -> bool:
        await refunds.run_once()
        return bool(pay_fake.refunds_of(order_id))
    await until(sent, timeout=30, interval=0.1)
    await drain(refunds, pay_fake, db)
    assert [r["refund"] for r in pay_fake.refunds_of(order_id)] == [12900]
    await check_money(db)


@pytest.mark.gen_test(timeout=120)
async def test_an_orders_second_refund_is_numbered_after_its_first_and_each_is_paid_once(
        db, gifts, drawer, orders, claims, pay_fake, refunds):
    cup, tea = await listed(db, "保温杯", 12900, 10), await listed(db, "奶茶券", 1800, 10)
    order_id = await paid_gift(orders, pay_fake, await member(gifts, "buyer"), (cup, 1), (tea, 1), method="full",
                               open_number=5)
    await gifts.join(order_id, await member(gifts, "only"))
    await drawn_at_deadline(drawer, db, order_id)  # one item won, the other refunded: the first refund
    await drain(refunds, pay_fake, db)
    await claims.sweep()  # the winner's claim opens; they never claim: the second refund
    await db.claims.update_many({"order_id": order_id}, {"$set": {"deadline_at": clock.utcnow() - timedelta(seconds=1)}})
    await claims.sweep()
    await drain(refunds, pay_fake, db)
    assert [r["_id"] for r in await db.refunds.find({"order_id": order_id}).sort("_id").to_list()] == [
        f"{order_id}R1", f"{order_id}R2"]
    assert sorted(r["refund"] for r in pay_fake.refunds_of(order_id)) == [1800, 12900]
    await check_money(db)
    # The sender is told of each refund, not only the first.
    await Notifications(db, {"gift_refunded": "tpl_refunded"}).expand_messages()
    told = await db.notifications.find({"kind": "gift_refunded"}).to_list()
    assert sorted(e["values"]["amount"] for e in told) == ["129.00", "18.00"]


class NotifiedBeforeTheAnswer(WeChatPayClient):
    """WeChat Pay ends the refund and its notify is applied while the answer to our refund
    request is still on its way (the record is still `sending`)."""

    def __init__(self, config, pay_fake) -> None:
        super().__init__(config, timeout=5)
        self.pay_fake = pay_fake
        self.refunds: Refunds | None = None  # the worker that applies the notify, set once made
        self.settled: list[str | None] = []

    async def refund(self, out_trade_no: str, out_refund_no: str, *args, **kwargs) -> dict:
        answer = await super().refund(out_trade_no, out_refund_no, *args, **kwargs)
        [notice] = verified(self, await self.pay_fake.complete_refund(out_refund_no, "SUCCESS"), expect="refund")
        self.settled.append(await self.refunds.settle(notice))
        return answer


@pytest.mark.gen_test(timeout=120)
async def test_a_refund_notify_arriving_before_our_answer_is_recorded_ends_the_refund_at_once(
        db, gifts, drawer, orders, payments, pay_fake):
    gateway = NotifiedBeforeTheAnswer(payments.config, pay_fake)
    gateway.refunds = refunds = Refunds(db, gateway, backoff_base=0.05, backoff_cap=0.2, spacing=timedelta(0),
                                        query_after=timedelta(hours=1))  # no query comes to the rescue
    cup = await listed(db, "保温杯", 12900, 10)
    buyer = await member(gifts, "buyer")
    order_id = await paid_gift(orders, pay_fake, buyer, (cup, 1), method="full", open_number=5)
    await drawn_at_deadline(drawer, db, order_id)
    await refunds.run_once()
    assert gateway.settled == ["success"]
    [record] = await db.refunds.find({"order_id": order_id}).to_list()
    assert record["status"] == "success"  # the late answer did not take it back to processing
    seen = order_view(await orders.order_of(order_id, buyer))
    assert (seen["status"], seen["amount_refunded"], seen["amount_refunding"]) == ("refunded", 12900, 0)
    await check_money(db)


@pytest.mark.gen_test(timeout=60)
async def test_a_notify_for_a_refund_we_never_made_changes_nothing(db, refunds, caplog):
    with pytest.raises(RefundMismatch):
        await refunds.settle({"out_refund_no": "f" * 24 + "R1", "refund_status": "SUCCESS"})
    assert "unknown refund" in caplog.text and "already known" not in caplog.text
    assert await refunds.settle({"out_refund_no": "f" * 24 + "R1", "refund_status": "NOT_A_STATE"}) is None
    assert await db.refunds.count_documents({}) == 0 and await db.outbox.count_documents({}) == 0


@pytest.mark.gen_test(timeout=60)
async def test_no_order_gets_more_than_wechat_pays_fifty_refunds(db, gifts, drawer, orders, pay_fake, refunds):
    cup = await listed(db, "保温杯", 12900, 10)
    order_id = await paid_gift(orders, pay_fake, await member(gifts, "buyer"), (cup, 1), method="full", open_number=5)
    await db.gifts.update_one({"_id": order_id}, {"$set": {"order.refund_seq": MAX_REFUNDS}})
    await drawn_at_deadline(drawer, db, order_id)  # its one item, unwon, registered for refund
    assert await refunds.plan() == 0
    await refunds.run_once()
    assert await db.refunds.count_documents({}) == 0 and pay_fake.refunds_of(order_id) == []


@pytest.mark.gen_test(timeout=60)
async def test_planners_racing_on_one_order_plan_its_refund_once_and_only_the_winner_counts_it(
        db, gifts, drawer, orders, pay_fake, payments):
    cup = await listed(db, "保温杯", 12900, 10)
    order_id = await paid_gift(orders, pay_fake, await member(gifts, "buyer"), (cup, 1), method="full", open_number=5)
    await drawn_at_deadline(drawer, db, order_id)  # its one item, unwon, registered for refund
    planners = [Refunds(db, payments) for _ in range(5)]
    planned = await asyncio.gather(*(planner.plan() for planner in planners))
    assert sum(planned) == 1  # the round that planned it says so; the others found it done
    assert await db.refunds.count_documents({"order_id": order_id}) == 1
    assert (await order_store.get(db, order_id))["order"]["refund_seq"] == 1
