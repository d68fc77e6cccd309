"""The WeChat Pay stand-in's own rules (fakes/wechatpay.py), driven through our client over real
HTTP: it validates what WeChat Pay validates (prepay parameters, our Authorization, refunds),
keeps WeChat Pay's idempotency (the same prepay, the same out_refund_no), its limits (50 refunds
an order, one a minute), completes refunds, sends notifies again when refused, and takes the
steering tests need."""
import json
import time
from urllib.parse import urlencode

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from wechatpay import crypto
from wechatpay.client import WeChatPayClient
from fakes.wechatpay import MCHID, FakeWeChatPay, generate_merchant_keys
from tests.waiting import until
from tests.wechatpay.support import OPENID, TOTAL, expire_in, failure, paid_order


@pytest.mark.gen_test(timeout=30)
async def test_the_same_prepay_again_answers_the_same_prepay_id_and_other_parameters_are_refused(client, fake):
    expire = expire_in()
    first = await client.jsapi_prepay("gift-order-0001", "礼物", TOTAL, OPENID, expire)
    assert await client.jsapi_prepay("gift-order-0001", "礼物", TOTAL, OPENID, expire) == first
    error = await failure(client.jsapi_prepay("gift-order-0001", "礼物", TOTAL + 1, OPENID, expire))
    assert (error.status, error.code, error.retryable) == (403, "OUT_TRADE_NO_USED", False)


@pytest.mark.parametrize("out_trade_no, total", [
    ("12345", TOTAL), ("x" * 33, TOTAL), ("gift order 1", TOTAL), ("gift-order-1", 0), ("gift-order-1", -5),
    ("gift-order-1", 19.9), ("gift-order-1", True)])
@pytest.mark.gen_test(timeout=30)
async def test_prepay_parameters_outside_wechat_pay_rules_answer_param_error(client, fake, out_trade_no, total):
    error = await failure(client.jsapi_prepay(out_trade_no, "礼物", total, OPENID, expire_in()))
    assert (error.status, error.code, error.retryable) == (400, "PARAM_ERROR", False)
    assert fake.transaction(out_trade_no) is None


@pytest.mark.gen_test(timeout=30)
async def test_out_trade_no_of_6_and_32_characters_with_wechat_symbols_is_accepted(client, fake):
    for no in ("123456", "A|b*c_d-" + "9" * 24):
        assert await client.jsapi_prepay(no, "礼物", 1, OPENID, expire_in())
        assert fake.transaction(no)["trade_state"] == "NOTPAY"
        assert (await client.query_by_out_trade_no(no))["out_trade_no"] == no  # in a signed, escaped path


async def raw_request(fake: FakeWeChatPay, path: str, *, mchid: str = MCHID, serial: str | None = None,
                      timestamp: int | None = None, tamper=None, authorization: str | None = None,
                      body: bytes | None = None, signed_body: bytes | None = None) -> tuple[int, dict]:
    """A GET (a POST with `body`) signed by hand with the fake's merchant key over `signed_body`
    (default: the body sent), or `tamper`ed; answered raw."""
    method = "POST" if body is not None else "GET"
    url = path + ("?" + urlencode({"mchid": MCHID}) if method == "GET" else "")
    if authorization is None:
        authorization = crypto.authorization(mchid, serial or fake.merchant.serial, fake.merchant.private_key, method,
                                             url, signed_body if signed_body is not None else body or b"",
                                             timestamp=timestamp)
    if tamper:
        authorization = tamper(authorization)
    response = await AsyncHTTPClient().fetch(HTTPRequest(fake.url + url, method=method, body=body, headers={
        "Authorization": authorization, "Content-Type": "application/json"}), raise_error=False)
    return response.code, json.loads(response.body) if response.body else {}


def flip_signature(header: str) -> str:
    start = header.index('signature="') + len('signature="')
    return header[:start] + ("A" if header[start] != "A" else "B") + header[start + 1:]


@pytest.mark.gen_test(timeout=30)
async def test_our_authorization_is_accepted_and_a_tampered_one_is_refused_with_sign_error(fake):
    path = "/v3/pay/transactions/out-trade-no/gift-order-0001"
    assert await raw_request(fake, path) == (404, {"code": "ORDERNOTEXIST", "message": "订单不存在"})
    close = json.dumps({"mchid": MCHID}).encode()
    assert (await raw_request(fake, path + "/close", body=close))[1]["code"] == "ORDERNOTEXIST"
    refused = [
        await raw_request(fake, path, tamper=flip_signature),
        await raw_request(fake, path + "/close", body=close, signed_body=close.replace(b'"}', b'0"}')),
        await raw_request(fake, path + "2", authorization=crypto.authorization(
            MCHID, fake.merchant.serial, fake.merchant.private_key, "GET", path + "?mchid=" + MCHID, b"")),
        await raw_request(fake, path, mchid="1900000999"),
        await raw_request(fake, path, serial="ABCDEF0123"),
        await raw_request(fake, path, timestamp=int(time.time()) - 400),
        await raw_request(fake, path, authorization='WECHATPAY2-SHA256-RSA2048 mchid="1"'),
    ]
    assert [(status, answer["code"]) for status, answer in refused] == [(401, "SIGN_ERROR")] * len(refused)


@pytest.mark.gen_test(timeout=30)
async def test_abnormal_and_closed_refunds_notify_and_a_closed_one_gives_its_amount_back(client, fake, receiver):
    await paid_order(client, fake)
    await client.refund("gift-order-0001", "r-1", TOTAL, TOTAL, "全部退回")
    [closed] = await fake.complete_refund("r-1", "CLOSED")
    assert closed.event_type == "REFUND.CLOSED" and receiver.accepted[-1]["refund_status"] == "CLOSED"
    assert (await client.refund("gift-order-0001", "r-2", TOTAL, TOTAL, "再次退回"))["status"] == "PROCESSING"
    [abnormal] = await fake.complete_refund("r-2", "ABNORMAL")
    assert abnormal.event_type == "REFUND.ABNORMAL" and receiver.accepted[-1]["refund_status"] == "ABNORMAL"
    error = await failure(client.refund("gift-order-0001", "r-3", 1, TOTAL, "再退一分"))
    assert (error.status, error.code, error.retryable) == (403, "NOT_ENOUGH", False)


@pytest.mark.gen_test(timeout=30)
async def test_refund_error_codes(client, fake):
    error = await failure(client.refund("gift-order-none", "r-1", 100, TOTAL, "退回"))
    assert (error.status, error.code, error.retryable) == (404, "RESOURCE_NOT_EXISTS", False)
    await client.jsapi_prepay("gift-order-0001", "礼物", TOTAL, OPENID, expire_in())
    error = await failure(client.refund("gift-order-0001", "r-1", 100, TOTAL, "退回"))
    assert (error.status, error.code) == (400, "INVALID_REQUEST")  # not paid
    await fake.pay("gift-order-0001", notify=False)
    error = await failure(client.refund("gift-order-0001", "r-1", 100, TOTAL + 1, "退回"))
    assert (error.status, error.code) == (400, "INVALID_REQUEST")  # not the order's total
    await client.refund("gift-order-0001", "r-1", TOTAL - 1, TOTAL, "退回")
    error = await failure(client.refund("gift-order-0001", "r-2", 2, TOTAL, "退回"))
    assert (error.status, error.code, error.retryable) == (403, "NOT_ENOUGH", False)
    error = await failure(client.refund("gift-order-0001", "r-1", TOTAL - 2, TOTAL, "退回"))
    assert (error.status, error.code) == (400, "INVALID_REQUEST")  # same out_refund_no, other amount
    error = await failure(client.query_refund("r-none"))
    assert (error.status, error.code, error.retryable) == (404, "RESOURCE_NOT_EXISTS", False)
    assert len(fake.refunds_of("gift-order-0001")) == 1


@pytest.mark.gen_test(timeout=30)
async def test_the_same_out_refund_no_refunds_once_even_when_the_answer_was_lost(client, fake):
    await paid_order(client, fake)
    fake.fail_next("/v3/refund/domestic/refunds", "apply_then_drop")
    error = await failure(client.refund("gift-order-0001", "gift-order-0001-r1", 300, TOTAL, "退回"))
    assert (error.status, error.retryable) == (None, True)
    assert len(fake.refunds_of("gift-order-0001")) == 1  # applied, though we never heard
    again = await client.refund("gift-order-0001", "gift-order-0001-r1", 300, TOTAL, "退回")
    once_more = await client.refund("gift-order-0001", "gift-order-0001-r1", 300, TOTAL, "退回")
    assert again["refund_id"] == once_more["refund_id"] == fake.refunds_of("gift-order-0001")[0]["refund_id"]
    assert len(fake.requests_to("/v3/refund/domestic/refunds", "POST")) == 3
    assert [r["refund"] for r in fake.refunds_of("gift-order-0001")] == [300]


@pytest.mark.gen_test(timeout=60)
async def test_at_most_50_refunds_per_order(client, fake):
    await paid_order(client, fake, total=100)
    for i in range(50):
        await client.refund("gift-order-0001", f"r-{i}", 1, 100, "部分退回")
    error = await failure(client.refund("gift-order-0001", "r-50", 1, 100, "部分退回"))
    assert (error.status, error.code, error.retryable) == (400, "INVALID_REQUEST", False)
    assert len(fake.refunds_of("gift-order-0001")) == 50


@pytest.mark.gen_test(timeout=30)
async def test_refunds_of_one_order_one_minute_apart_else_frequency_limited(receiver):
    strict = FakeWeChatPay(refund_interval=60).start()
    try:
        client = WeChatPayClient(strict.client_config(receiver.url("/pay/notify"), receiver.url("/refund/notify")))
        await paid_order(client, strict)
        first = await client.refund("gift-order-0001", "r-1", 100, TOTAL, "退回")
        error = await failure(client.refund("gift-order-0001", "r-2", 100, TOTAL, "退回"))
        assert (error.status, error.code, error.retryable) == (429, "FREQUENCY_LIMITED", True)
        assert (await client.refund("gift-order-0001", "r-1", 100, TOTAL, "退回"))["refund_id"] == first["refund_id"]
        assert len(strict.refunds_of("gift-order-0001")) == 1
    finally:
        strict.stop()


@pytest.mark.gen_test(timeout=30)
async def test_refunds_complete_by_themselves_after_refund_delay_and_notify(receiver):
    auto = FakeWeChatPay(refund_interval=0, refund_delay=0.1).start()
    try:
        client = WeChatPayClient(auto.client_config(receiver.url("/pay/notify"), receiver.url("/refund/notify")))
        receiver.client = client
        await paid_order(client, auto)
        assert (await client.refund("gift-order-0001", "r-1", 100, TOTAL, "退回"))["status"] == "PROCESSING"
        await until(lambda: receiver.accepted)
        assert receiver.accepted[0]["refund_status"] == "SUCCESS"
        assert (await client.query_refund("r-1"))["status"] == "SUCCESS"
    finally:
        auto.stop()


@pytest.mark.gen_test(timeout=30)
async def test_a_refused_notify_is_sent_again_on_wechat_pay_schedule(receiver):
    retrying = FakeWeChatPay(notify_retry_delays=(0.05, 0.05)).start()
    try:
        client = WeChatPayClient(retrying.client_config(receiver.url("/pay/notify")))
        receiver.client = client
        await paid_order(client, retrying)
        await retrying.send_notify("gift-order-0001", fault="bad_signature")
        # A delivery is listed when sent and gets its status when answered: wait for the third answer.
        await until(lambda: len(retrying.deliveries) == 3 and retrying.deliveries[2].status is not None)
        assert [d.status for d in retrying.deliveries] == [401, 401, 401] and len(receiver.refused) == 3
    finally:
        retrying.stop()


@pytest.mark.gen_test(timeout=30)
async def test_another_trusted_merchant_key_and_a_forced_trade_state(make_client, fake):
    second = generate_merchant_keys()
    fake.trust_merchant(second.public_pem, second.serial)
    client = make_client(private_key=second.private_key, cert_serial=second.serial)
    await client.jsapi_prepay("gift-order-0001", "礼物", TOTAL, OPENID, expire_in())
    fake.set_trade_state("gift-order-0001", "USERPAYING")
    queried = await client.query_by_out_trade_no("gift-order-0001")
    assert (queried["trade_state"], queried["trade_state_desc"]) == ("USERPAYING", "用户支付中")
