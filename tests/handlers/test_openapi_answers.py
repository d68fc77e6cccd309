"""Answers the contract test's fuzzing never reaches are as /api/openapi.json describes them:
refunds (they follow a draw, and WeChat Pay's refund round trip) and a payment that lands on an
order already closed. Each answer is checked against its operation's schema for its status."""
from datetime import timedelta

import jsonschema_rs  # Schemathesis's validator
import pytest

from handlers.openapi import description
from lottery import clock
from lottery.refunds import Refunds
from tests.gifts import make_due
from tests.shop import ADDRESS, bought_gift, drain, product


@pytest.fixture
def app(build_app, payments):
    return build_app(payments=payments)


@pytest.fixture
def refunds(db, payments) -> Refunds:
    return Refunds(db, payments, spacing=timedelta(0), query_after=timedelta(milliseconds=200))


@pytest.fixture
def pay_fake(pay_fake):
    pay_fake.refund_interval = 0  # several refunds of one order within a minute
    return pay_fake


def assert_described(method: str, path: str, status: int, answer) -> None:
    """`answer` is what the description says `method path` answers with `status`."""
    spec = description()
    responses = spec["paths"][path][method.lower()]["responses"]
    response = responses.get(str(status)) or responses[f"{str(status)[0]}XX"]
    schema = {**response["content"]["application/json"]["schema"], "components": spec["components"]}
    jsonschema_rs.Draft202012Validator(schema, validate_formats=True).validate(answer)


@pytest.mark.gen_test(timeout=120)
async def test_an_orders_refunds_are_answered_as_described(api, app, db, pay_fake, refunds):
    cup, tea = await product(api, "保温杯", 12900, 10), await product(api, "奶茶券", 1800, 10)
    buyer, winner = await api.login("buyer"), await api.login("winner")
    order_id = await bought_gift(api, pay_fake, buyer, (cup, 1), (tea, 1), method="full", open_number=5)
    await api.join(winner, order_id)
    await make_due(db, order_id)
    # One winner of two items: one refunded. (The join near the last seats nudged the draw,
    # which may open it first, now that it is due: either way it is drawn once.)
    await app.settings["draws"].sweep()
    await app.settings["draws"].idle()
    assert (await db.gifts.find_one({"_id": order_id}))["status"] == "finished"
    await app.settings["claims"].sweep()
    await drain(refunds, pay_fake, db)
    reads = [
        ("GET", "/api/v1/orders/{order_id}", f"/api/v1/orders/{order_id}", None, buyer),
        ("GET", "/api/v1/orders", "/api/v1/orders", None, buyer),
        ("GET", "/api/v1/gifts/{order_id}/claims", f"/api/v1/gifts/{order_id}/claims", None, buyer),
        ("GET", "/api/admin/refunds", "/api/admin/refunds?status=success", None, api.admin_token),
        ("POST", "/api/payment/returnOrderData", "/api/payment/returnOrderData",
         {"login_key": buyer, "order_id": order_id}, None),
        ("POST", "/api/v1/gifts/{order_id}/claim", f"/api/v1/gifts/{order_id}/claim", ADDRESS, winner),
        ("GET", "/api/v1/me/prizes", "/api/v1/me/prizes", None, winner),
    ]
    for method, path, url, body, token in reads:
        status, answer = await api.request(method, url, body, token=token)
        assert status == 200, (url, answer)
        assert_described(method, path, status, answer)
    status, listed = await api.request("GET", "/api/admin/refunds?status=success", token=api.admin_token)
    [refund] = listed["refunds"]
    assert refund["order_id"] == order_id and refund["status"] == "success"
    status, seen = await api.request("GET", f"/api/v1/gifts/{order_id}/claims", token=buyer)
    assert seen["refunds"] and seen["order"]["status"] == "partially_refunded"


@pytest.mark.gen_test(timeout=120)
async def test_a_payment_after_the_order_closed_is_answered_as_described(api, app, db, pay_fake):
    tea = await product(api, "奶茶券", 1800, 10)
    buyer = await api.login("buyer")
    status, created = await api.request("POST", "/api/v1/orders", {
        "items": [{"product_id": tea, "quantity": 3}], "method": "direct"}, token=buyer)
    assert_described("POST", "/api/v1/orders", status, created)
    order_id = created["order_id"]
    await db.gifts.update_one({"_id": order_id}, {"$set": {"due_at": clock.utcnow() - timedelta(seconds=1)}})
    assert await app.settings["orders"].sweep() == 1  # closed at WeChat Pay
    pay_fake.set_trade_state(order_id, "NOTPAY")
    await pay_fake.pay(order_id)  # the payment went through anyway
    status, order = await api.request("GET", f"/api/v1/orders/{order_id}", token=buyer)
    assert status == 200 and order["paid_after_close"] == {"amount": 5400, "refund": "pending"}
    assert_described("GET", "/api/v1/orders/{order_id}", status, order)
    status, again = await api.request("POST", f"/api/v1/orders/{order_id}/pay", {}, token=buyer)
    assert_described("POST", "/api/v1/orders/{order_id}/pay", status, again)
