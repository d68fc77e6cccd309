"""Refunds across real server processes: a scheduler killed while WeChat Pay was applying its
refund (the answer never came back) and another taking over pay it once; two schedulers racing
over the same refunds send each once."""
import pytest

from tests.servers import ServerProcess, uri_with_db
from tests.shop import bought_gift, check_money, product, wechatpay_env
from tests.gifts import make_due
from tests.waiting import until

SCHEDULER = ("--role=scheduler", "--sweep_seconds=0.2", "--refund_lease_seconds=2", "--leader_lease_seconds=2")


@pytest.fixture
def app(build_app, payments):
    return build_app(payments=payments)


def scheduler(engine_uri: str, db_name: str, wechat_url: str, pay_fake, port: int, tmp_path) -> ServerProcess:
    process = ServerProcess(uri_with_db(engine_uri, db_name), wechat_url, *SCHEDULER)
    process.env.update(wechatpay_env(pay_fake, port, tmp_path))
    return process


async def refunded(db, order_id: str) -> bool:
    gift = await db.gifts.find_one({"_id": order_id})
    return gift["order"].get("amount_refunded", 0) > 0


@pytest.mark.gen_test(timeout=180)
async def test_a_scheduler_killed_mid_refund_and_another_taking_over_refund_once(
        api, app, db, db_name, engine_uri, wechat_fake, pay_fake, http_port, tmp_path):
    cup = await product(api, "保温杯", 12900, 10)
    order_id = await bought_gift(api, pay_fake, await api.login("buyer"), (cup, 2), method="full", open_number=5)
    await make_due(db, order_id)
    assert await app.settings["draws"].sweep() == 1  # one item nobody won... two, to refund
    # WeChat Pay will apply the first refund request but answer only after a long while.
    pay_fake.slow_seconds = 30
    pay_fake.fail_next("/v3/refund/domestic/refunds", "apply_then_timeout")
    first = scheduler(engine_uri, db_name, wechat_fake.url, pay_fake, http_port, tmp_path).start()
    try:
        await until(lambda: pay_fake.requests_to("/v3/refund/domestic/refunds", "POST"), timeout=60)
        held = await db.refunds.find_one({"order_id": order_id})
        assert held["status"] == "sending"
        first.kill()  # SIGKILL, with the request applied and its answer not yet back
    finally:
        first.kill()
    pay_fake.slow_seconds = 0
    second = scheduler(engine_uri, db_name, wechat_fake.url, pay_fake, http_port, tmp_path).start()
    try:
        # Its lease lapsed, the refund is sent again under the same number: WeChat Pay answers
        # with the refund it already has.
        await until(lambda: len(pay_fake.requests_to("/v3/refund/domestic/refunds", "POST")) == 2, timeout=60)

        async def processing() -> bool:
            return (await db.refunds.find_one({"order_id": order_id}))["status"] == "processing"
        await until(processing, timeout=30)
        [refund] = pay_fake.refunds_of(order_id)
        await pay_fake.complete_refund(refund["out_refund_no"], "SUCCESS", notify=True)
        await until(lambda: refunded(db, order_id), timeout=60)
    finally:
        second.stop()
    [refund] = pay_fake.refunds_of(order_id)  # one refund at WeChat Pay, for both requests
    assert refund["refund"] == 2 * 12900
    record = await db.refunds.find_one({"order_id": order_id})
    assert record["status"] == "success" and record["attempts"] == 2
    await check_money(db)


@pytest.mark.gen_test(timeout=180)
async def test_two_scheduler_processes_send_each_refund_once(
        api, app, db, db_name, engine_uri, wechat_fake, pay_fake, http_port, tmp_path):
    pay_fake.refund_delay = 0.2
    box = await product(api, "礼盒", 5000, 100)
    buyer = await api.login("buyer")
    orders = [await bought_gift(api, pay_fake, buyer, (box, 2), method="full", open_number=3, wish=f"礼物{i}")
              for i in range(8)]
    for order_id in orders:
        await make_due(db, order_id)
    assert await app.settings["draws"].sweep() == 8
    processes = [scheduler(engine_uri, db_name, wechat_fake.url, pay_fake, http_port, tmp_path).start()
                 for _ in range(2)]
    try:
        async def all_refunded() -> bool:
            return all([await refunded(db, o) for o in orders])
        await until(all_refunded, timeout=90)
    finally:
        for process in processes:
            process.stop()
    for order_id in orders:
        assert [r["refund"] for r in pay_fake.refunds_of(order_id)] == [2 * 5000]
    assert len(pay_fake.requests_to("/v3/refund/domestic/refunds", "POST")) == 8
    await check_money(db)
