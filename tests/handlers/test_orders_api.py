"""Buying a gift: the server prices the order, holds its stock, asks WeChat Pay; the payment's
notify (or a query) pays the order and opens the gift, once, however WeChat retries or who races."""
import asyncio
import json
from collections import Counter
from datetime import datetime, timezone

import pytest

from wechatpay import crypto
from tests.shop import order, order_body, product, stock_of


@pytest.fixture
def app(build_app, payments):
    return build_app(payments=payments)


async def buyer(api, name: str = "buyer") -> str:
    return await api.login(name)


async def paid_gift(db, order_id: str) -> dict:
    return await db.gifts.find_one({"_id": order_id})


@pytest.mark.gen_test(timeout=60)
async def test_an_order_is_priced_by_the_server_and_paid_through_a_signed_notify_then_the_gift_is_joinable(
        api, db, pay_fake):
    coffee, tea = await product(api, "咖啡券", 2800, 10), await product(api, "奶茶券", 1800, 10)
    key = await buyer(api)
    body = order_body((coffee, 2), (tea, 1), method="full", open_number=3, wish="一起喝",
                      price=1, amount_total=1)  # what a client says a price is, is never read
    body["items"][0]["price"] = 1
    status, created = await api.request("POST", "/api/v1/orders", body, token=key)
    assert status == 201 and created["amount_total"] == 2 * 2800 + 1800 and created["status"] == "unpaid"
    pay = created["pay"]
    assert pay["package"].startswith("prepay_id=") and pay["signType"] == "RSA" and pay["appId"] == "wx_test_appid"
    message = "".join(pay[k] + "\n" for k in ("appId", "timeStamp", "nonceStr", "package")).encode()
    assert crypto.signature_valid(pay_fake.merchant.private_key.public_key(), message, pay["paySign"])
    order_id = created["order_id"]
    assert pay_fake.transaction(order_id)["total"] == 7400
    # Unpaid: not a gift anyone can see or join.
    assert (await api.gift(await api.login("friend"), order_id))[0] == 404
    assert await stock_of(db, coffee) == (8, {order_id: 2})
    await pay_fake.pay(order_id)  # WeChat Pay sends the signed, encrypted notify
    assert pay_fake.deliveries[-1].status == 204
    status, seen = await api.request("GET", f"/api/v1/orders/{order_id}", token=key)
    assert status == 200 and seen["status"] == "paid" and seen["gift"]["url"] == f"/gift/{order_id}"
    assert (seen["method"], seen["open_number"], seen["open_at"]) == ("full", 3, None) and seen["deadline_at"]
    assert [(line["name"], line["price"], line["quantity"]) for line in seen["lines"]] == [("咖啡券", 2800, 2), ("奶茶券", 1800, 1)]
    assert await stock_of(db, coffee) == (8, {})  # the hold became a sale
    status, joined = await api.join(await api.login("friend"), order_id)
    assert status == 200 and joined["me"]["state"] == "joined_waiting"
    gift = await paid_gift(db, order_id)
    assert [i["name"] for i in gift["items"]] == ["咖啡券", "咖啡券", "奶茶券"] and gift["deadline_at"] is not None


@pytest.mark.gen_test(timeout=60)
async def test_the_same_tap_twice_is_one_order_and_asking_again_gives_pay_parameters_again(api, db, pay_fake):
    cup = await product(api, "保温杯", 12900, 5)
    key = await buyer(api)
    first = await order(api, key, (cup, 1))
    again = await order(api, key, (cup, 1))
    assert (first[0], again[0]) == (201, 200) and again[1]["order_id"] == first[1]["order_id"]
    assert again[1]["pay"]["package"] == first[1]["pay"]["package"]  # the prepay id is reused
    status, paying = await api.request("POST", f"/api/v1/orders/{first[1]['order_id']}/pay", {}, token=key)
    assert status == 200 and paying["pay"]["package"] == first[1]["pay"]["package"]
    # A client's idempotency key makes its retries the same order too, even alongside others.
    keyed = [await api.request("POST", "/api/v1/orders", order_body((cup, 2)), token=key,
                               headers={"Idempotency-Key": "tap-42"}) for _ in range(3)]
    assert [s for s, _ in keyed] == [201, 200, 200] and len({a["order_id"] for _, a in keyed}) == 1
    assert await db.gifts.count_documents({"order.buyer_id": {"$exists": True}}) == 2
    assert await stock_of(db, cup) == (2, {first[1]["order_id"]: 1, keyed[0][1]["order_id"]: 2})


@pytest.mark.gen_test(timeout=60)
async def test_ten_identical_taps_at_once_make_one_order_and_the_rest_get_it_or_a_409(api, db, pay_fake):
    cup = await product(api, "保温杯", 12900, 50)
    key = await buyer(api)
    answers = await api.burst("/api/v1/orders", order_body((cup, 1)), 10,
                              headers={"Idempotency-Key": "tap-7", "Authorization": f"Bearer {key}"})
    made = [a for s, a in answers if s == 201]
    assert len(made) == 1
    for status, answer in answers:
        assert (status == 200 and answer["order_id"] == made[0]["order_id"]) or \
            (status == 201) or (status == 409 and answer["error"]["code"] == "order_in_progress"), (status, answer)
    assert await db.gifts.count_documents({"order.buyer_id": {"$exists": True}}) == 1
    assert await stock_of(db, cup) == (49, {made[0]["order_id"]: 1})


@pytest.mark.gen_test(timeout=60)
async def test_an_idempotency_key_reused_with_a_different_body_is_a_409_and_the_same_body_the_same_order(
        api, db, pay_fake):
    cup, tea = await product(api, "保温杯", 12900, 20), await product(api, "奶茶券", 1800, 20)
    key = await buyer(api)
    keyed = {"Idempotency-Key": "tap-9"}
    status, first = await api.request("POST", "/api/v1/orders", order_body((cup, 1), wish="生日快乐"),
                                      token=key, headers=keyed)
    assert status == 201
    for other in (order_body((cup, 2), wish="生日快乐"), order_body((tea, 1), wish="生日快乐"),
                  order_body((cup, 1), wish="新年快乐"), order_body((cup, 1), method="full", open_number=2)):
        status, answer = await api.request("POST", "/api/v1/orders", other, token=key, headers=keyed)
        assert status == 409 and answer["error"]["code"] == "idempotency_key_reused", answer
        assert answer["error"]["message"] and not answer["error"]["message"].isascii()
    # The same body, its keys in another order (the same order spec): the same order.
    same = {"wish": "生日快乐", "method": "direct", "items": [{"quantity": 1, "product_id": cup}]}
    status, again = await api.request("POST", "/api/v1/orders", same, token=key, headers=keyed)
    assert status == 200 and again["order_id"] == first["order_id"]
    assert await db.gifts.count_documents({"order.buyer_id": {"$exists": True}}) == 1
    assert await stock_of(db, cup) == (19, {first["order_id"]: 1}) and await stock_of(db, tea) == (20, {})


@pytest.mark.gen_test(timeout=60)
async def test_an_idempotency_key_raced_with_different_bodies_makes_one_order_and_the_others_get_409(
        api, db, pay_fake):
    cup = await product(api, "保温杯", 12900, 50)
    key = await buyer(api)
    bodies = [order_body((cup, 1 + i % 2)) for i in range(10)]  # two different bodies, five of each
    answers = await api.burst("/api/v1/orders", None, 10, bodies=bodies,
                              headers={"Idempotency-Key": "tap-8", "Authorization": f"Bearer {key}"})
    made = [(b, a) for b, (s, a) in zip(bodies, answers) if s == 201]
    assert len(made) == 1
    winner, created = made[0]
    for body, (status, answer) in zip(bodies, answers):
        if body == winner:
            assert status in (200, 201) or (status == 409 and answer["error"]["code"] == "order_in_progress"), answer
            assert status == 409 or answer["order_id"] == created["order_id"]
        else:
            assert status == 409 and answer["error"]["code"] == "idempotency_key_reused", (status, answer)
    assert await db.gifts.count_documents({"order.buyer_id": {"$exists": True}}) == 1
    quantity = winner["items"][0]["quantity"]
    assert await stock_of(db, cup) == (50 - quantity, {created["order_id"]: quantity})


@pytest.mark.gen_test(timeout=120)
async def test_fifty_buyers_racing_for_ten_in_stock_make_exactly_ten_orders(api, db):
    scarce = await product(api, "限量礼盒", 9900, 10)
    keys = await asyncio.gather(*(api.login(f"racer{i}") for i in range(50)))
    answers = await asyncio.gather(*(order(api, k, (scarce, 1)) for k in keys))
    codes = Counter(status for status, _ in answers)
    assert codes == {201: 10, 409: 40}
    assert {a["error"]["code"] for s, a in answers if s == 409} == {"out_of_stock"}
    stock, held = await stock_of(db, scarce)
    assert stock == 0 and len(held) == 10 and sum(held.values()) == 10
    assert await db.gifts.count_documents({"status": "unpaid"}) == 10


@pytest.mark.gen_test(timeout=90)
async def test_one_member_holds_at_most_three_unpaid_orders_and_fifty_units_until_one_is_paid_or_expires(
        api, app, db, pay_fake):
    stocked, other = await product(api, "保温杯", 12900, 1000), await product(api, "奶茶券", 1800, 1000)
    key = await buyer(api)
    status, answer = await order(api, key, (stocked, 30), (other, 21))  # 51 units in one order
    assert status == 409 and answer["error"]["code"] == "too_many_unpaid_orders"
    assert answer["error"]["message"] == "你有太多未支付的订单，请先支付或等待过期"
    made = [await order(api, key, (stocked, 20), wish=f"第{i}个") for i in range(2)]
    assert [s for s, _ in made] == [201, 201]
    status, answer = await order(api, key, (stocked, 11))  # 51 units across unpaid orders
    assert status == 409 and answer["error"]["code"] == "too_many_unpaid_orders"
    status, third = await order(api, key, (other, 10))
    assert status == 201
    status, answer = await order(api, key, (other, 1))  # a fourth unpaid order
    assert status == 409 and answer["error"]["code"] == "too_many_unpaid_orders"
    legacy = await api.legacy("/api/order/creatOrder", {"login_key": key, **order_body((other, 1))})
    assert legacy == {"code": "error", "message": "你有太多未支付的订单，请先支付或等待过期", "data": None}
    assert await stock_of(db, stocked) == (960, {made[0][1]["order_id"]: 20, made[1][1]["order_id"]: 20})
    assert (await order(api, await buyer(api, "another"), (other, 1)))[0] == 201  # others are not held back
    await pay_fake.pay(made[0][1]["order_id"])  # paid: no longer unpaid
    assert (await order(api, key, (other, 1)))[0] == 201
    assert (await order(api, key, (other, 2)))[0] == 409
    await db.gifts.update_one({"_id": third["order_id"]}, {"$set": {"due_at": datetime.now(timezone.utc)}})
    assert await app.settings["orders"].sweep() == 1  # expired and closed: no longer unpaid
    assert (await order(api, key, (other, 2)))[0] == 201


@pytest.mark.gen_test(timeout=90)
async def test_ten_orders_at_once_by_one_member_make_at_most_three_unpaid_orders(api, db, pay_fake):
    cup = await product(api, "保温杯", 12900, 100)
    key = await buyer(api)
    bodies = [order_body((cup, 1), wish=f"第{i}个") for i in range(10)]  # ten different orders
    answers = await api.burst("/api/v1/orders", None, 10, bodies=bodies, headers={"Authorization": f"Bearer {key}"})
    assert Counter(s for s, _ in answers) == {201: 3, 409: 7}, answers
    assert {a["error"]["code"] for s, a in answers if s == 409} == {"too_many_unpaid_orders"}
    assert await db.gifts.count_documents({"status": "unpaid"}) == 3
    stock, held = await stock_of(db, cup)
    assert stock == 97 and len(held) == 3
    counted = await db.unpaid_holds.find_one({"_id": (await db.gifts.find_one({"status": "unpaid"}))["sender_id"]})
    assert (counted["orders"], counted["units"], sorted(counted["held"])) == (3, 3, sorted(held))


@pytest.mark.gen_test(timeout=60)
async def test_an_order_short_of_one_line_takes_none_of_the_others(api, db):
    plenty, scarce = await product(api, "坚果", 9900, 50), await product(api, "耳机", 19900, 1)
    key = await buyer(api)
    status, answer = await order(api, key, (plenty, 5), (scarce, 2))
    assert status == 409 and answer["error"]["code"] == "out_of_stock" and "耳机" in answer["error"]["message"]
    assert await stock_of(db, plenty) == (50, {}) and await stock_of(db, scarce) == (1, {})
    assert await db.gifts.count_documents({}) == 0


@pytest.mark.gen_test(timeout=90)
async def test_twenty_identical_notifies_at_once_pay_the_order_once(api, db, pay_fake, caplog):
    caplog.set_level("INFO")
    gift_box = await product(api, "月饼礼盒", 16800, 5)
    key = await buyer(api)
    _, created = await order(api, key, (gift_box, 1))
    order_id = created["order_id"]
    version = (await paid_gift(db, order_id))["version"]
    await pay_fake.pay(order_id, notify=False)  # paid; its notify is lost...
    deliveries = await pay_fake.send_notify(order_id, copies=20)  # ...then 20 come at once
    assert {d.status for d in deliveries} == {204}  # each accepted: WeChat stops retrying
    assert caplog.text.count(f"order {order_id} paid:") == 1
    gift = await paid_gift(db, order_id)
    assert gift["status"] == "open" and gift["paid"] and gift["version"] == version + 1


@pytest.mark.gen_test(timeout=90)
async def test_a_notify_and_the_pay_result_page_at_the_same_instant_pay_once(api, db, pay_fake, caplog):
    caplog.set_level("INFO")
    cup = await product(api, "保温杯", 12900, 5)
    key = await buyer(api)
    _, created = await order(api, key, (cup, 1))
    order_id = created["order_id"]
    await pay_fake.pay(order_id, notify=False)
    results = await asyncio.gather(
        pay_fake.send_notify(order_id, copies=3),
        *(api.legacy("/api/payment/returnOrderData", {"login_key": key, "order_id": order_id}) for _ in range(5)))
    assert all(r["code"] == "success" and r["data"]["paid"] for r in results[1:])
    assert caplog.text.count(f"order {order_id} paid:") == 1
    assert (await paid_gift(db, order_id))["order"]["status"] == "paid"


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("fault, status", [("bad_signature", 401), ("unknown_serial", 401), ("stale", 401),
                                           ("tampered_ciphertext", 401), ("wrong_amount", 400)])
async def test_a_forged_or_mismatched_notify_changes_nothing(api, db, pay_fake, fault, status):
    cup = await product(api, "保温杯", 12900, 5)
    key = await buyer(api)
    _, created = await order(api, key, (cup, 1))
    order_id = created["order_id"]
    await pay_fake.pay(order_id, notify=False)
    [delivery] = await pay_fake.send_notify(order_id, fault=fault)
    assert delivery.status == status  # not 2xx: WeChat Pay would try again
    gift = await paid_gift(db, order_id)
    assert gift["status"] == "unpaid" and not gift["paid"] and gift["order"]["status"] == "unpaid"


@pytest.mark.gen_test(timeout=60)
async def test_without_a_notify_the_order_read_asks_wechat_pay(api, db, pay_fake):
    tea = await product(api, "奶茶券", 1800, 5)
    key = await buyer(api)
    _, created = await order(api, key, (tea, 1))
    status, unpaid = await api.request("GET", f"/api/v1/orders/{created['order_id']}", token=key)
    assert status == 200 and unpaid["status"] == "unpaid" and unpaid["gift"] is None
    await pay_fake.pay(created["order_id"], notify=False)
    status, paid = await api.request("GET", f"/api/v1/orders/{created['order_id']}", token=key)
    assert status == 200 and paid["status"] == "paid" and paid["gift"]["status"] == "open"


@pytest.mark.gen_test(timeout=60)
async def test_the_seeds_creat_order_answers_the_envelope(api, pay_fake):
    tea = await product(api, "奶茶券", 1800, 5)
    key = await buyer(api)
    answer = await api.legacy("/api/order/creatOrder", {"login_key": key, **order_body((tea, 2))})
    assert answer["code"] == "success" and answer["data"]["amount_total"] == 3600
    assert answer["data"]["pay"]["package"].startswith("prepay_id=")
    answer = await api.legacy("/api/order/creatOrder", {"login_key": "nope", **order_body((tea, 2))})
    assert answer == {"code": "error", "message": "login_key已过期", "data": None}


@pytest.mark.gen_test(timeout=60)
async def test_orders_are_their_buyers_alone(api, pay_fake):
    tea = await product(api, "奶茶券", 1800, 5)
    owner, other = await buyer(api, "owner"), await buyer(api, "other")
    _, created = await order(api, owner, (tea, 1))
    for path in (f"/api/v1/orders/{created['order_id']}",):
        assert (await api.request("GET", path, token=other))[0] == 404
        assert (await api.request("GET", path))[0] == 401
    assert (await api.request("POST", f"/api/v1/orders/{created['order_id']}/pay", {}, token=other))[0] == 404
    answer = await api.legacy("/api/payment/returnOrderData", {"login_key": other, "order_id": created["order_id"]})
    assert answer["code"] == "error" and answer["message"] == "订单不存在"
    status, mine = await api.request("GET", "/api/v1/orders", token=other)
    assert status == 200 and mine == {"orders": [], "next_cursor": None}
    status, mine = await api.request("GET", "/api/v1/orders", token=owner)
    assert [o["order_id"] for o in mine["orders"]] == [created["order_id"]]


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("change, code", [
    (lambda b: b["items"].clear(), "invalid_input"),
    (lambda b: b["items"][0].update(quantity=0), "invalid_input"),
    (lambda b: b["items"][0].update(quantity=10**7), "invalid_input"),
    (lambda b: b["items"][0].update(quantity="2"), "invalid_input"),
    (lambda b: b["items"].extend({"product_id": f"p{i}", "quantity": 1} for i in range(20)), "invalid_input"),
    (lambda b: b["items"][0].update(product_id={"$ne": None}), "invalid_input"),
    (lambda b: b["items"][0].update(product_id="0123456789abcdef01234567"), "product_not_found"),
    (lambda b: b.update(method="lucky"), "invalid_input"),
    (lambda b: b.update(method="timed", open_at="2001-01-01T00:00:00Z"), "invalid_input"),
    (lambda b: b.update(method="full"), "missing_params"),
])
async def test_bad_orders_are_refused_and_change_nothing(api, db, change, code):
    tea = await product(api, "奶茶券", 1800, 5)
    key = await buyer(api)
    body = order_body((tea, 1))
    change(body)
    status, answer = await api.request("POST", "/api/v1/orders", body, token=key)
    assert 400 <= status < 500 and answer["error"]["code"] == code, answer
    assert await db.gifts.count_documents({}) == 0 and await stock_of(db, tea) == (5, {})


@pytest.mark.gen_test(timeout=60)
async def test_an_off_sale_product_cannot_be_ordered(api, db):
    tea = await product(api, "奶茶券", 1800, 5, on_sale=False)
    status, answer = await order(api, await buyer(api), (tea, 1))
    assert status == 404 and answer["error"]["code"] == "product_not_found"


@pytest.mark.gen_test
async def test_a_price_change_never_alters_an_order_already_made(api, db):
    tea = await product(api, "奶茶券", 1800, 5)
    key = await buyer(api)
    _, created = await order(api, key, (tea, 2))
    await api.request("PATCH", f"/api/admin/products/{tea}", {"price": 9999}, token=api.admin_token)
    status, seen = await api.request("GET", f"/api/v1/orders/{created['order_id']}", token=key)
    assert seen["amount_total"] == 3600 and seen["lines"][0]["price"] == 1800


@pytest.mark.gen_test(timeout=60)
async def test_a_notify_payload_is_checked_before_anything_is_parsed(api, db):
    response = await api.http.fetch(api.base_url + "/api/payment/wechat/notify", method="POST",
                                    body=json.dumps({"event_type": "TRANSACTION.SUCCESS"}), raise_error=False)
    assert response.code == 401 and json.loads(response.body)["code"] == "SIGN_ERROR"


@pytest.mark.gen_test(timeout=60)
async def test_a_recipient_never_learns_what_the_sender_paid(api, pay_fake, base_url):
    coffee = await product(api, "咖啡券", 2800, 10)
    sender = await buyer(api)
    status, created = await order(api, sender, (coffee, 2), method="direct")
    await pay_fake.pay(created["order_id"])
    order_id = created["order_id"]
    friend = await api.login("friend")
    status, joined = await api.join(friend, order_id)
    assert status == 200 and joined["me"]["state"] == "won"
    assert joined["me"]["item"] == {"name": "咖啡券", "image": ""}  # no price, no product id
    status, seen = await api.gift(friend, order_id)
    assert seen["me"]["item"] == {"name": "咖啡券", "image": ""}
    assert all(set(item) == {"name", "image"} for item in seen["gift"]["items"])
    legacy = await api.join_gift(await api.login("another"), order_id)
    assert legacy["code"] == "suc" and "price" not in json.dumps(legacy["data"])
    status, winners = await api.request("GET", f"/api/v1/gifts/{order_id}/winners")
    assert status == 200 and "2800" not in json.dumps(winners) and "price" not in json.dumps(winners)
