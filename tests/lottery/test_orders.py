"""Orders in the domain, against the real database and the local WeChat Pay: expiry closes at
WeChat Pay and gives stock back; a payment is applied once whatever races it; a payment that
lands after the close is recorded for refund; a reservation left half-way is undone."""
import asyncio
import logging
from datetime import timedelta

import pytest

from lottery import clock
from lottery.catalogue import Catalogue, ProductSpec
from lottery.errors import PaymentMismatch, TooManyUnpaidOrders, UpstreamError
from lottery.orders import OrderLine, Orders, OrderSpec, order_view
from lottery.storage import orders as order_store
from lottery.storage import products
from wechatpay.client import WeChatPayClient


async def setup(db, gifts, stock: int = 5) -> tuple[str, str]:
    """(buyer member id, product id)."""
    product = await Catalogue(db).add_product(ProductSpec("保温杯", 12900, stock))
    return await gifts.accounts.ensure_member("o_buyer"), product["_id"]


async def expire(db, order_id: str) -> None:
    await db.gifts.update_one({"_id": order_id}, {"$set": {"due_at": clock.utcnow() - timedelta(seconds=1)}})


async def stock(db, product_id: str) -> tuple[int, dict]:
    doc = await db.products.find_one({"_id": product_id})
    return doc["stock"], doc["held"]


@pytest.mark.gen_test(timeout=60)
async def test_an_unpaid_order_past_its_expiry_is_closed_at_wechat_pay_and_its_stock_comes_back(db, gifts, orders, pay_fake):
    buyer, cup = await setup(db, gifts)
    order, _, _ = await orders.create(buyer, OrderSpec([OrderLine(cup, 2)], "direct"))
    assert await stock(db, cup) == (3, {order["_id"]: 2})
    assert await orders.sweep() == 0  # not expired yet
    await expire(db, order["_id"])
    assert await orders.sweep() == 1
    closed = await order_store.get(db, order["_id"])
    assert closed["status"] == "closed" and closed["order"]["status"] == "closed"
    assert pay_fake.transaction(order["_id"])["trade_state"] == "CLOSED"
    assert await stock(db, cup) == (5, {})
    assert await orders.sweep() == 0 and await stock(db, cup) == (5, {})  # given back once


@pytest.mark.gen_test(timeout=60)
async def test_an_order_paid_but_not_yet_notified_at_its_expiry_is_paid_not_closed(db, gifts, orders, pay_fake):
    buyer, cup = await setup(db, gifts)
    order, _, _ = await orders.create(buyer, OrderSpec([OrderLine(cup, 1)], "direct"))
    await pay_fake.pay(order["_id"], notify=False)
    await expire(db, order["_id"])
    assert await orders.sweep() == 0
    paid = await order_store.get(db, order["_id"])
    assert paid["status"] == "open" and paid["order"]["status"] == "paid"
    assert await stock(db, cup) == (4, {})


@pytest.mark.gen_test(timeout=90)
async def test_a_payment_landing_after_the_close_is_recorded_once_for_refund_and_alerts_once(
        db, gifts, orders, pay_fake, caplog):
    buyer, cup = await setup(db, gifts)
    order, _, _ = await orders.create(buyer, OrderSpec([OrderLine(cup, 1)], "direct"))
    await expire(db, order["_id"])
    assert await orders.sweep() == 1
    pay_fake.set_trade_state(order["_id"], "NOTPAY")  # WeChat Pay took the money anyway
    await pay_fake.pay(order["_id"], notify=False)
    transaction = await orders.gateway.query_by_out_trade_no(order["_id"])
    outcomes = await asyncio.gather(*(orders.settle(transaction) for _ in range(10)))
    assert set(outcomes) == {"paid_after_close"}
    alerts = [(r.levelname, r.getMessage()) for r in caplog.records if "paid after" in r.getMessage()]
    assert alerts == [("ERROR", f"order {order['_id']}: paid after it was closed; its whole amount goes back (12900 fen)")]
    closed = await order_store.get(db, order["_id"])
    assert closed["status"] == "closed" and not closed["paid"]
    record = closed["order"]["paid_after_close"]
    assert (record["transaction_id"], record["amount"]) == (transaction["transaction_id"], 12900) and record["at"]
    assert closed["order"]["refund_unbatched"] == 1
    item = closed["order"]["refund_items"]["0"]
    assert (item["price"], item["cause"]) == (12900, "paid_after_close") and item["at"]  # refunded as "订单已关闭"
    assert await stock(db, cup) == (5, {})  # given back once, not sold


@pytest.mark.gen_test(timeout=120)
async def test_an_order_expiring_while_its_payment_arrives_ends_paid_or_closed_never_both(db, gifts, orders, pay_fake):
    buyer, cup = await setup(db, gifts, stock=100)
    for round_ in range(8):
        order, _, _ = await orders.create(buyer, OrderSpec([OrderLine(cup, 1)], "direct", wish=f"第{round_}次"))
        await expire(db, order["_id"])

        async def pays() -> str:
            await asyncio.sleep(0.002 * round_)
            await pay_fake.pay(order["_id"], notify=False)
            return await orders.settle(await orders.gateway.query_by_out_trade_no(order["_id"]))

        _, settled = await asyncio.gather(orders.sweep(), pays(), return_exceptions=True)
        final = await order_store.get(db, order["_id"])
        held = (await stock(db, cup))[1]
        if final["status"] == "open":  # paid: the stock stays sold, no refund owed
            assert final["order"]["status"] == "paid" and "paid_after_close" not in final["order"]
        else:  # closed first: the stock came back, and a payment that landed anyway is to refund
            assert final["status"] == "closed"
            charged = pay_fake.transaction(order["_id"])["trade_state"] == "SUCCESS"
            assert ("paid_after_close" in final["order"]) == charged
        assert order["_id"] not in held
    # Every unit is either sold (a paid order) or back in stock.
    paid = await db.gifts.count_documents({"order.status": "paid"})
    assert (await stock(db, cup))[0] == 100 - paid


@pytest.mark.gen_test(timeout=60)
async def test_a_reservation_left_half_way_by_a_stopped_process_is_undone(db, gifts, orders):
    buyer, cup = await setup(db, gifts)
    other = (await Catalogue(db).add_product(ProductSpec("耳机", 19900, 5)))["_id"]
    # What a process leaves when it stops after holding the first line of two.
    gift = {"_id": "a" * 24, "status": "reserving", "due_at": clock.utcnow() - timedelta(minutes=2),
            "sender_id": buyer, "created_at": clock.utcnow(), "paid": False,
            "order": {"buyer_id": buyer, "status": "reserving", "key": "k", "key_open": True,
                      "lines": [{"product_id": cup, "quantity": 2}, {"product_id": other, "quantity": 1}]}}
    await order_store.insert(db, gift)
    assert await products.hold(db, cup, gift["_id"], 2)
    await orders.sweep()
    assert await stock(db, cup) == (5, {}) and await stock(db, other) == (5, {})
    assert await db.gifts.count_documents({"_id": gift["_id"]}) == 0


@pytest.mark.gen_test(timeout=60)
async def test_when_wechat_pay_fails_the_order_waits_and_asking_again_pays_it(db, gifts, orders, pay_fake):
    buyer, cup = await setup(db, gifts)
    spec = OrderSpec([OrderLine(cup, 1)], "direct")
    pay_fake.fail_next("/v3/pay/transactions/jsapi", "SYSTEM_ERROR")
    with pytest.raises(UpstreamError):
        await orders.create(buyer, spec)
    [waiting] = await db.gifts.find({"status": "unpaid"}).to_list()
    again, pay, new = await orders.create(buyer, spec)
    assert not new and again["_id"] == waiting["_id"] and pay["package"].startswith("prepay_id=")
    assert await stock(db, cup) == (4, {waiting["_id"]: 1})


async def unpaid_count(db, buyer: str) -> tuple[int, int]:
    counted = await db.unpaid_holds.find_one({"_id": buyer}) or {}
    return counted.get("orders", 0), counted.get("units", 0)


@pytest.mark.gen_test(timeout=90)
async def test_a_members_unpaid_count_is_capped_under_concurrency_and_drops_once_when_an_order_is_paid_or_closed(
        db, gifts, payments, pay_fake):
    buyer, cup = await setup(db, gifts, stock=100)
    capped = Orders(db, payments, mchid=payments.config.mchid, appid=payments.config.appid,
                    max_unpaid_orders=3, max_unpaid_units=50)
    results = await asyncio.gather(*(capped.create(buyer, OrderSpec([OrderLine(cup, 2)], "direct", wish=f"第{i}个"))
                                     for i in range(10)), return_exceptions=True)
    made = [r[0] for r in results if not isinstance(r, Exception)]
    assert len(made) == 3 and {type(r) for r in results if isinstance(r, Exception)} == {TooManyUnpaidOrders}
    assert await unpaid_count(db, buyer) == (3, 6) and await stock(db, cup) == (94, {o["_id"]: 2 for o in made})
    await pay_fake.pay(made[0]["_id"], notify=False)
    transaction = await capped.gateway.query_by_out_trade_no(made[0]["_id"])
    await asyncio.gather(*(capped.settle(transaction) for _ in range(5)))  # paid once, uncounted once
    assert await unpaid_count(db, buyer) == (2, 4)
    await expire(db, made[1]["_id"])
    await asyncio.gather(capped.sweep(), capped.sweep())
    assert await unpaid_count(db, buyer) == (1, 2)


@pytest.mark.gen_test(timeout=60)
async def test_an_order_left_counted_as_unpaid_by_a_stopped_process_does_not_block_its_buyer(db, gifts, payments):
    buyer, cup = await setup(db, gifts, stock=100)
    capped = Orders(db, payments, mchid=payments.config.mchid, appid=payments.config.appid,
                    max_unpaid_orders=1, max_unpaid_units=50)
    order, _, _ = await capped.create(buyer, OrderSpec([OrderLine(cup, 1)], "direct"))
    # Closed, but its process stopped before uncounting it.
    assert await order_store.closed(db, order["_id"], clock.utcnow())
    again, _, new = await capped.create(buyer, OrderSpec([OrderLine(cup, 1)], "direct", wish="再来"))
    assert new and await unpaid_count(db, buyer) == (1, 1)
    with pytest.raises(TooManyUnpaidOrders):  # the cap still holds for an order really unpaid
        await capped.create(buyer, OrderSpec([OrderLine(cup, 1)], "direct", wish="第三个"))


class PaidDuringTheClose(WeChatPayClient):
    """WeChat Pay closes the order, and a payment that landed there anyway is settled (its
    notify, or a query) before our sweep's own close update runs."""

    def __init__(self, config, pay_fake) -> None:
        super().__init__(config, timeout=5)
        self.pay_fake = pay_fake
        self.orders: Orders | None = None  # the service that settles it, set once made
        self.settled: list[str] = []

    async def close(self, out_trade_no: str) -> None:
        await super().close(out_trade_no)
        self.pay_fake.set_trade_state(out_trade_no, "NOTPAY")  # the payer's money arrives anyway
        await self.pay_fake.pay(out_trade_no, notify=False)
        self.settled.append(await self.orders.settle(await self.query_by_out_trade_no(out_trade_no)))


@pytest.mark.gen_test(timeout=60)
async def test_a_payment_settled_between_wechat_pays_close_and_ours_leaves_the_order_paid_and_its_stock_sold(
        db, gifts, payments, pay_fake):
    gateway = PaidDuringTheClose(payments.config, pay_fake)
    racing = Orders(db, gateway, mchid=payments.config.mchid, appid=payments.config.appid)
    gateway.orders = racing
    buyer, cup = await setup(db, gifts)
    order, _, _ = await racing.create(buyer, OrderSpec([OrderLine(cup, 2)], "direct"))
    await expire(db, order["_id"])
    assert await racing.sweep() == 0  # our close found it paid: nothing closed
    assert gateway.settled == ["paid"]
    final = await order_store.get(db, order["_id"])
    assert final["status"] == "open" and final["paid"] and final["order"]["status"] == "paid"
    assert "closed_at" not in final["order"] and "paid_after_close" not in final["order"]
    assert await stock(db, cup) == (3, {})  # sold, never given back


@pytest.mark.gen_test(timeout=60)
async def test_no_read_of_an_order_carries_its_secret_draw_seed_or_its_claimants(db, gifts, orders):
    buyer, cup = await setup(db, gifts)
    order, _, _ = await orders.create(buyer, OrderSpec([OrderLine(cup, 1)], "direct"))
    stored = await db.gifts.find_one({"_id": order["_id"]})
    assert stored["seed"]  # the seed is there, only never read out
    await db.gifts.update_one({"_id": order["_id"]}, {"$set": {"claimants": [buyer], "order.refund_unbatched": 1}})
    now = clock.utcnow()
    reads = {"get": [await order_store.get(db, order["_id"])],
             "by_key": [await order_store.by_key(db, stored["order"]["key"])],
             "of_buyer": await order_store.of_buyer(db, buyer, now + timedelta(days=1), 10),
             "with_refunds_to_make": await order_store.with_refunds_to_make(db, 10),
             "expired": await order_store.expired(db, now + timedelta(days=1), 10)}
    await db.gifts.update_one({"_id": order["_id"]}, {"$set": {"status": "reserving"}})
    reads["stalled"] = await order_store.stalled(db, now + timedelta(days=1), 10)
    for read, found in reads.items():
        assert [o["_id"] for o in found] == [order["_id"]], read
        assert "seed" not in found[0] and "claimants" not in found[0], read


@pytest.mark.gen_test(timeout=60)
async def test_once_an_order_closes_unpaid_the_same_request_makes_a_new_order(db, gifts, orders):
    buyer, cup = await setup(db, gifts)
    spec = OrderSpec([OrderLine(cup, 1)], "direct")
    first, _, _ = await orders.create(buyer, spec)
    await expire(db, first["_id"])
    assert await orders.sweep() == 1
    closed = order_view(await order_store.get(db, first["_id"]))
    assert closed["status"] == "closed" and closed["closed_at"]  # the buyer sees when it closed
    again, pay, new = await orders.create(buyer, spec)
    assert new and again["_id"] != first["_id"] and again["status"] == "unpaid" and pay["package"]


@pytest.mark.gen_test(timeout=60)
async def test_a_buyer_sees_their_own_orders_newest_first_from_the_cursor_on_never_a_reservation(db, gifts, orders):
    buyer, cup = await setup(db, gifts, stock=10)
    other = await gifts.accounts.ensure_member("o_other_buyer")
    made = []
    for i in range(3):
        order, _, _ = await orders.create(buyer, OrderSpec([OrderLine(cup, 1)], "direct", wish=f"第{i}个"))
        await db.gifts.update_one({"_id": order["_id"]}, {"$set": {"created_at": clock.utcnow() - timedelta(hours=3 - i)}})
        made.append(order["_id"])
    await orders.create(other, OrderSpec([OrderLine(cup, 1)], "direct"))
    await db.gifts.update_one({"_id": made[1]}, {"$set": {"status": "reserving"}})  # a reservation under way
    listed = await orders.of_buyer(buyer)
    assert [o["order_id"] for o in listed["orders"]] == [made[2], made[0]] and listed["next_cursor"] is None
    older = await orders.of_buyer(buyer, listed["orders"][0]["created_at"])
    assert [o["order_id"] for o in older["orders"]] == [made[0]]
    two = await order_store.of_buyer(db, buyer, clock.utcnow(), 2)
    assert [o["_id"] for o in two] == [made[2], made[1]]


@pytest.mark.gen_test(timeout=60)
async def test_a_payment_that_does_not_match_its_order_never_pays_it_and_is_logged_with_both_amounts(
        db, gifts, orders, pay_fake, caplog):
    caplog.set_level(logging.INFO, logger="lottery.orders")
    buyer, cup = await setup(db, gifts)
    order, _, _ = await orders.create(buyer, OrderSpec([OrderLine(cup, 1)], "direct"))
    assert await orders.settle(await orders.gateway.query_by_out_trade_no(order["_id"])) == "ignored"  # NOTPAY
    await pay_fake.pay(order["_id"], notify=False)
    paid = await orders.gateway.query_by_out_trade_no(order["_id"])
    for change in ({"amount": {**paid["amount"], "total": 1}}, {"mchid": "1900000999"}, {"appid": "wx_other"}):
        with pytest.raises(PaymentMismatch):
            await orders.settle({**paid, **change})
    assert f"order {order['_id']}: payment does not match the order (merchant, app or amount 1 != 12900)" in [
        r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    for no in ("f" * 24, {"$ne": ""}, None):  # no such order, or not an order number at all
        with pytest.raises(PaymentMismatch) as refused:
            await orders.settle({**paid, "out_trade_no": no})
        assert str(refused.value) == "订单不存在"
    assert (await order_store.get(db, order["_id"]))["status"] == "unpaid"
    assert await orders.settle(paid) == "paid"
    assert await orders.settle(paid) == "already_paid"  # its notify again, or a query
    assert f"order {order['_id']} paid: 12900 fen" in [r.getMessage() for r in caplog.records]
    view = order_view(await order_store.get(db, order["_id"]))
    # A direct gift's deadline counts from its payment (24 hours unless the buyer chose).
    assert clock.parse_time(view["deadline_at"]) - clock.parse_time(view["paid_at"]) == timedelta(hours=24)


@pytest.mark.gen_test(timeout=60)
async def test_a_payment_records_wechat_pays_transaction_and_the_gifts_deadline_counts_from_it(
        db, gifts, orders, pay_fake):
    # Reconciliation matches our books to WeChat Pay's bill by the transaction id and the amount
    # the payer paid: the payment must record both, and a gift's deadline runs from the payment.
    buyer, cup = await setup(db, gifts, stock=10)
    direct, _, _ = await orders.create(buyer, OrderSpec([OrderLine(cup, 1)], "direct", deadline_hours=2))
    timed, _, _ = await orders.create(buyer, OrderSpec([OrderLine(cup, 1)], "timed",
                                                      open_at=clock.utcnow() + timedelta(hours=5)))
    assert (await order_store.get(db, direct["_id"]))["order"]["status"] == "unpaid"
    for order in (direct, timed):
        await pay_fake.pay(order["_id"], notify=False)
        assert await orders.settle(await orders.gateway.query_by_out_trade_no(order["_id"])) == "paid"
    paid_direct, paid_timed = await order_store.get(db, direct["_id"]), await order_store.get(db, timed["_id"])
    for paid in (paid_direct, paid_timed):
        transaction = await orders.gateway.query_by_out_trade_no(paid["_id"])  # as WeChat Pay reports it
        assert paid["order"]["transaction_id"] == transaction["transaction_id"]
        assert paid["order"]["payer_total"] == transaction["amount"]["payer_total"] == 12900
    paid_at = clock.as_utc(paid_direct["order"]["paid_at"])
    assert clock.as_utc(paid_direct["deadline_at"]) == paid_at + timedelta(hours=2)
    assert clock.as_utc(paid_direct["due_at"]) == paid_at + timedelta(hours=2)
    assert paid_timed["deadline_at"] is None  # a timed gift opens at its time, with no deadline
    assert clock.as_utc(paid_timed["due_at"]) == clock.as_utc(paid_timed["open_at"])
    # Paid, the order no longer answers for its request: the same request again is a new order.
    again, _, _ = await orders.create(buyer, OrderSpec([OrderLine(cup, 1)], "direct", deadline_hours=2))
    assert again["_id"] != direct["_id"]


@pytest.mark.gen_test(timeout=60)
async def test_stock_held_again_for_the_same_order_is_taken_once_and_the_retry_is_told_it_is_held(db, gifts):
    _, cup = await setup(db, gifts, stock=5)
    assert await products.hold(db, cup, "order-1", 2)
    assert await products.hold(db, cup, "order-1", 2)  # a retry whose first answer was lost
    assert await stock(db, cup) == (3, {"order-1": 2})
    assert not await products.hold(db, cup, "order-2", 4)  # more than is left
    assert await stock(db, cup) == (3, {"order-1": 2})
