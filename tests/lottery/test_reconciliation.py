"""Daily reconciliation against WeChat Pay's bill (lottery/reconciliation.py), against the real
database and the local WeChat Pay, whose bills are its own record of what it charged and
refunded: each kind of mismatch planted there is found, a payment whose notify was lost is settled
once however runs race, a day runs once however schedulers race, and the money invariant holds
under a racing load and reports a planted violation."""
import asyncio
from datetime import datetime, time, timedelta

import pytest

from lottery import clock
from lottery.orders import OrderLine, OrderSpec
from lottery.reconciliation import BillUnreadable, Reconciliation, fen, parse_bill
from lottery.refunds import Refunds
from lottery.storage import orders as order_store
from tests.shop import check_money, drain, listed, paid_gift

BILL = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
    "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
    "手续费,费率,订单金额,申请退款金额,费率备注\r\n"
    "`2026-12-03 10:00:00,`wx_test_appid,`1900000109,`0,`,`4200000001202612030000000001,`aaaaaaaaaaaaaaaaaaaaaaaa,"
    "`o_buyer,`JSAPI,`SUCCESS,`OTHERS,`CNY,`19.99,`0.00,`0,`0,`0.00,`0.00,`,`,`礼物抽奖,`,`0.12,`0.60%,`19.99,`0.00,`\r\n"
    "`2026-12-03 11:30:05,`wx_test_appid,`1900000109,`0,`,`4200000001202612030000000002,`bbbbbbbbbbbbbbbbbbbbbbbb,"
    "`o_other,`JSAPI,`SUCCESS,`OTHERS,`CNY,`1234.56,`0.00,`0,`0,`0.00,`0.00,`,`,`礼物抽奖,`,`7.41,`0.60%,`1234.56,`0.00,`\r\n"
    "`2026-12-03 18:00:00,`wx_test_appid,`1900000109,`0,`,`4200000001202612030000000001,`aaaaaaaaaaaaaaaaaaaaaaaa,"
    "`o_buyer,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50300000012026120300000001,`aaaaaaaaaaaaaaaaaaaaaaaaR1,"
    "`0.29,`0.00,`ORIGINAL,`SUCCESS,`礼物抽奖,`,`0.00,`0.60%,`0.00,`0.29,`\r\n"
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n"
    "`3,`1254.55,`0.29,`0.00,`7.53,`1254.55,`0.29\r\n")


@pytest.fixture
def pay_fake(pay_fake):
    pay_fake.refund_interval = 0
    return pay_fake


@pytest.fixture
def reconciliation(db, payments, orders) -> Reconciliation:
    return Reconciliation(db, payments, orders)


@pytest.fixture
def refunds(db, payments) -> Refunds:
    return Refunds(db, payments, backoff_base=0.05, backoff_cap=0.2, spacing=timedelta(0),
                   query_after=timedelta(milliseconds=200))


def today() -> str:
    return clock.utcnow().astimezone(clock.SHANGHAI).date().isoformat()


def tomorrow_at(hour: int) -> datetime:
    day = clock.utcnow().astimezone(clock.SHANGHAI).date() + timedelta(days=1)
    return clock.as_utc(datetime.combine(day, time(hour), clock.SHANGHAI))


async def buyer(gifts, name: str = "buyer") -> str:
    return await gifts.accounts.ensure_member(f"o_{name}")


async def unnotified_order(orders, pay_fake, buyer_id: str, product: str) -> str:
    """An order paid at WeChat Pay whose notify never came (and nobody queried)."""
    order, _, _ = await orders.create(buyer_id, OrderSpec([OrderLine(product, 1)], "direct"))
    await pay_fake.pay(order["_id"], notify=False)
    return order["_id"]


async def refunded_item(db, refunds, pay_fake, order_id: str, price: int) -> str:
    """Item 0 of the order refunded through the refund worker; the refund's number."""
    assert await order_store.register_refund(db, order_id, 0, price, "claim_expired", clock.utcnow())
    await drain(refunds, pay_fake, db)
    [record] = await db.refunds.find({"order_id": order_id}).to_list()
    assert record["status"] == "success"
    return record["_id"]


def kinds(report: dict) -> dict[str, int]:
    return {kind: n for kind, n in report["summary"]["mismatches"].items() if n}


def test_the_bill_parser_reads_payments_refunds_and_exact_fen_from_wechat_pays_layout():
    bill = parse_bill(BILL)
    assert [(p.out_trade_no, p.amount, p.state) for p in bill.payments] == [
        ("a" * 24, 1999, "SUCCESS"), ("b" * 24, 123456, "SUCCESS")]
    [refund] = bill.refunds
    assert (refund.out_trade_no, refund.out_refund_no, refund.amount, refund.refund_status) == (
        "a" * 24, "a" * 24 + "R1", 29, "SUCCESS")
    assert bill.summary["总交易单数"] == "3"
    assert [fen(t) for t in ("0.29", "19.99", "1234.56", "-0.05", "0.00")] == [29, 1999, 123456, -5, 0]
    for broken in (BILL.replace("`3,`1254.55", "`3,`1254.56"), BILL.replace("`19.99,`0.00,`0", "`19.9,`0.00,`0"),
                   BILL.split("总交易单数")[0], "not a bill"):
        with pytest.raises(BillUnreadable):
            parse_bill(broken)


@pytest.mark.gen_test(timeout=60)
async def test_a_day_whose_books_agree_reports_no_mismatch(db, gifts, orders, pay_fake, reconciliation):
    product = await listed(db, "咖啡券", 2800)
    order_id = await paid_gift(orders, pay_fake, await buyer(gifts), (product, 2))
    report = await reconciliation.check(today())
    assert kinds(report) == {} and report["mismatches"] == [] and report["violations"] == []
    summary = report["summary"]
    assert (summary["payments_there"], summary["payments_here"], summary["amount_there"], summary["amount_here"]) == (
        1, 1, 5600, 5600)
    assert summary["bill"] == "ready" and order_id


@pytest.mark.gen_test(timeout=60)
async def test_a_payment_whose_notify_was_lost_is_settled_once_even_when_two_runs_race(
        db, gifts, orders, payments, pay_fake):
    product = await listed(db, "咖啡券", 2800, stock=5)
    order_id = await unnotified_order(orders, pay_fake, await buyer(gifts), product)
    runs = [Reconciliation(db, payments, orders) for _ in range(2)]
    first, second = await asyncio.gather(*(run.check(today()) for run in runs))
    assert first["summary"]["settled_by_reconciliation"] + second["summary"]["settled_by_reconciliation"] == 1
    # A run that reads the orders after the other settled finds nothing to mend (a loaded
    # machine may run them one after the other); at least one found the payment.
    found = [m for report in (first, second) for m in report["mismatches"]]
    assert 1 <= len(found) <= 2
    for mismatch in found:
        assert mismatch["kind"] == "missing_here" and mismatch["out_trade_no"] == order_id
        assert mismatch["resolution"] in ("paid", "already_paid")
    gift = await db.gifts.find_one({"_id": order_id})
    assert gift["order"]["status"] == "paid" and gift["status"] == "open" and gift["paid"] is True
    stock = await db.products.find_one({"_id": product})
    assert stock["stock"] == 4 and not stock.get("held")  # sold once, not released, not sold twice
    assert kinds(await runs[0].check(today())) == {}  # settled: the books now agree


@pytest.mark.gen_test(timeout=120)
async def test_each_kind_of_mismatch_planted_at_wechat_pay_is_found(db, gifts, orders, pay_fake, refunds,
                                                                      reconciliation):
    product = await listed(db, "咖啡券", 2800)
    members = [await buyer(gifts, f"b{i}") for i in range(6)]  # the same request twice is the same order
    tampered = await paid_gift(orders, pay_fake, members[0], (product, 1))
    dropped = await paid_gift(orders, pay_fake, members[1], (product, 1))
    lost_notify = await unnotified_order(orders, pay_fake, members[2], product)
    refund_tampered_order = await paid_gift(orders, pay_fake, members[3], (product, 2))
    refund_dropped_order = await paid_gift(orders, pay_fake, members[4], (product, 2))
    manual_order = await paid_gift(orders, pay_fake, members[5], (product, 1))
    refund_tampered = await refunded_item(db, refunds, pay_fake, refund_tampered_order, 2800)
    refund_dropped = await refunded_item(db, refunds, pay_fake, refund_dropped_order, 2800)
    manual_refund = pay_fake.plant_refund(manual_order, 1000)  # refunded on the merchant platform
    pay_fake.tamper_bill(tampered, 2801)
    pay_fake.tamper_bill(dropped, None)
    pay_fake.tamper_bill(refund_tampered, 2700)
    pay_fake.tamper_bill(refund_dropped, None)

    report = await reconciliation.check(today())
    found = {(m["kind"], m["out_trade_no"]): m for m in report["mismatches"]}
    assert set(found) == {("amount_differs", tampered), ("missing_there", dropped), ("missing_here", lost_notify),
                          ("refund_amount_differs", refund_tampered_order),
                          ("refund_missing_there", refund_dropped_order), ("refund_missing_here", manual_order)}
    assert (found[("amount_differs", tampered)]["amount_there"], found[("amount_differs", tampered)]["amount_here"]) \
        == (2801, 2800)
    assert found[("refund_amount_differs", refund_tampered_order)]["amount_there"] == 2700
    assert found[("refund_missing_there", refund_dropped_order)]["out_refund_no"] == refund_dropped
    assert found[("refund_missing_here", manual_order)]["out_refund_no"] == manual_refund
    assert report["summary"]["settled_by_reconciliation"] == 1 and report["violations"] == []
    assert kinds(report) == {kind: 1 for kind in ("missing_here", "missing_there", "amount_differs",
                                                  "refund_missing_here", "refund_missing_there",
                                                  "refund_amount_differs")}


@pytest.mark.gen_test(timeout=60)
async def test_the_day_runs_once_even_when_two_schedulers_call_run_due_together(
        db, gifts, orders, payments, pay_fake):
    product = await listed(db, "咖啡券", 2800)
    await paid_gift(orders, pay_fake, await buyer(gifts), (product, 1))
    schedulers = [Reconciliation(db, payments, orders, after_hour=10) for _ in range(2)]
    assert await schedulers[0].run_due(tomorrow_at(9)) is None  # before the bill is ready: nothing asked
    assert pay_fake.requests_to("/v3/bill/tradebill") == []
    reports = await asyncio.gather(*(s.run_due(tomorrow_at(11)) for s in schedulers))
    [report] = [r for r in reports if r is not None]
    assert report["_id"] == today() and kinds(report) == {}
    assert len(pay_fake.requests_to("/v3/bill/tradebill")) == 1
    restarted = Reconciliation(db, payments, orders)  # a restart, or a third process: the day is done
    assert await restarted.run_due(tomorrow_at(12)) is None
    assert len(pay_fake.requests_to("/v3/bill/tradebill")) == 1
    stored = await db.reconciliations.find_one({"_id": today()})
    assert stored["status"] == "done" and stored["summary"]["payments_here"] == 1


@pytest.mark.gen_test(timeout=60)
async def test_a_day_whose_bill_is_not_ready_waits_and_a_day_without_trades_is_done_empty(
        db, gifts, orders, payments, pay_fake, reconciliation):
    product = await listed(db, "咖啡券", 2800)
    await paid_gift(orders, pay_fake, await buyer(gifts), (product, 1))
    pay_fake.fail_next("/v3/bill/tradebill", "SYSTEM_ERROR")
    assert await reconciliation.run_due(tomorrow_at(11)) is None
    waiting = await db.reconciliations.find_one({"_id": today()})
    assert waiting["status"] == "waiting" and "SYSTEM_ERROR" in waiting["last_error"]
    asked = len(pay_fake.requests_to("/v3/bill/tradebill"))
    assert await reconciliation.run_due(tomorrow_at(11)) is None  # it waits out its retry time
    assert len(pay_fake.requests_to("/v3/bill/tradebill")) == asked
    local_today = clock.utcnow().astimezone(clock.SHANGHAI).date()
    report = await reconciliation.run_due(clock.as_utc(datetime.combine(local_today, time(23), clock.SHANGHAI)))
    assert report["_id"] == (local_today - timedelta(days=1)).isoformat()  # no trades there nor here
    assert report["summary"]["bill"] == "none" and kinds(report) == {}


@pytest.mark.gen_test(timeout=120)
async def test_the_money_invariant_holds_after_racing_payments_and_refunds_and_a_violation_is_reported(
        db, gifts, orders, payments, pay_fake, refunds, reconciliation):
    product = await listed(db, "咖啡券", 1500, stock=50)
    members = [await buyer(gifts, f"b{i}") for i in range(4)]
    made = [(await orders.create(m, OrderSpec([OrderLine(product, 3)], "direct")))[0]["_id"] for m in members]
    for order_id in made:
        await pay_fake.pay(order_id, notify=False)
    # Each payment applied twice at once (a notify and a query), racing the others and a reconciliation.
    transactions = [await payments.query_by_out_trade_no(o) for o in made]
    settled = await asyncio.gather(*(orders.settle(t) for t in transactions * 2), reconciliation.check(today()))
    assert sorted(settled[:-1]).count("paid") + settled[-1]["summary"]["settled_by_reconciliation"] == len(made)
    now = clock.utcnow()
    registered = await asyncio.gather(*(order_store.register_refund(db, o, i, 1500, "claim_expired", now)
                                        for o in made[:3] for i in (0, 1, 0)))
    assert registered.count(True) == 6  # each item once
    await asyncio.gather(refunds.run_once(), refunds.run_once())
    await drain(refunds, pay_fake, db)
    await check_money(db)
    report = await reconciliation.check(today())
    assert kinds(report) == {} and report["violations"] == [] and report["summary"]["orders_checked"] == 4
    assert report["summary"]["refunded_here"] == report["summary"]["refunded_there"] == 6 * 1500

    await db.gifts.update_one({"_id": made[3]}, {"$set": {"order.amount_refunded": 4600}})  # planted
    report = await reconciliation.check(today())
    [violation] = report["violations"]
    assert violation["out_trade_no"] == made[3] and report["summary"]["invariant_violations"] == 1
    assert any("> paid" in problem for problem in violation["problems"])
