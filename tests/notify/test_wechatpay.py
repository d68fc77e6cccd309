"""WeChat Pay v3: our client against the local fake over real HTTP. Requests carry our signature,
replies and notifies are trusted only once verified, and errors say whether to try again."""
import base64
import json
import logging
import re
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from wechatpay import crypto
from wechatpay.client import BadCiphertext, BadSignature, MalformedMessage, StaleTimestamp, UnknownSerial, VerificationError, WeChatPayClient, WeChatPayConfig, WeChatPayError
from fakes.wechatpay import APIV3_KEY, APPID, MCHID, FakeWeChatPay, generate_merchant_keys
from tests.waiting import until
from lottery.errors import ConfigError

CHINA = timezone(timedelta(hours=8))
OPENID = "o_buyer"
TOTAL = 1990


def expire_in(minutes: int = 30) -> datetime:
    return datetime.now(CHINA).replace(microsecond=0) + timedelta(minutes=minutes)


class NotifyReceiver:
    """Our side of notifies in these tests: routes that verify each notify with a client, as
    the payment and refund routes will, answering 204 or 401 `{"code": "FAIL"}`."""

    def __init__(self) -> None:
        self.client: WeChatPayClient | None = None
        self.accepted: list[dict] = []
        self.refused: list[VerificationError] = []
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def app(self) -> web.Application:
        receiver = self

        class Route(web.RequestHandler):
            def initialize(self, expect: str) -> None:
                self.expect = expect

            def post(self) -> None:
                try:
                    resource = receiver.client.verify_notify(self.request.headers, self.request.body,
                                                             expect=self.expect)
                except VerificationError as exc:
                    receiver.refused.append(exc)
                    self.set_status(401)
                    self.finish({"code": "FAIL", "message": exc.reason})
                    return
                receiver.accepted.append(resource)
                self.set_status(204)

        return web.Application([("/pay/notify", Route, {"expect": "transaction"}),
                                ("/refund/notify", Route, {"expect": "refund"})])


@pytest.fixture
def fake():
    fake = FakeWeChatPay(refund_interval=0).start()
    yield fake
    fake.stop()


@pytest.fixture
def receiver(io_loop):
    receiver = NotifyReceiver()
    sockets = bind_sockets(0, "127.0.0.1")
    receiver.port = sockets[0].getsockname()[1]
    server = HTTPServer(receiver.app())
    server.add_sockets(sockets)
    yield receiver
    server.stop()


@pytest.fixture
def make_client(fake, receiver):
    """`make_client(mode=..., **config changes)`: a client of the fake whose notifies go to the
    receiver; the receiver verifies with the last one made."""
    def make(mode: str = "public_key", timeout: float = 5.0, **changes) -> WeChatPayClient:
        config = fake.client_config(receiver.url("/pay/notify"), receiver.url("/refund/notify"), mode=mode)
        if changes:
            config = WeChatPayConfig(**{**config.__dict__, **changes})
        receiver.client = WeChatPayClient(config, timeout=timeout)
        return receiver.client
    return make


@pytest.fixture
def client(make_client) -> WeChatPayClient:
    return make_client()


async def paid_order(client: WeChatPayClient, fake: FakeWeChatPay, no: str = "gift-order-0001",
                     total: int = TOTAL, notify: bool = False) -> str:
    await client.jsapi_prepay(no, "礼物 x3", total, OPENID, expire_in())
    await fake.pay(no, notify=notify)
    return no


async def failure(call) -> WeChatPayError:
    with pytest.raises(WeChatPayError) as caught:
        await call
    return caught.value


# -- prepay and wx.requestPayment ----------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_prepay_sends_the_jsapi_fields_and_request_payment_is_signed_over_the_exact_message(
        client, fake, receiver):
    expire = expire_in()
    prepay_id = await client.jsapi_prepay("gift-order-0001", "礼物 x3", TOTAL, OPENID, expire)
    sent = fake.requests_to("/v3/pay/transactions/jsapi")[0].json()
    assert sent == {"appid": APPID, "mchid": MCHID, "description": "礼物 x3", "out_trade_no": "gift-order-0001",
                    "time_expire": expire.isoformat(), "notify_url": receiver.url("/pay/notify"),
                    "amount": {"total": TOTAL, "currency": "CNY"}, "payer": {"openid": OPENID}}
    assert expire.isoformat().endswith("+08:00") and "T" in expire.isoformat()

    params = client.request_payment_params(prepay_id)
    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["appId"] == APPID and params["package"] == f"prepay_id={prepay_id}" and params["signType"] == "RSA"
    assert params["timeStamp"].isdigit() and abs(int(params["timeStamp"]) - time.time()) < 60
    merchant_key = crypto.load_public_key(fake.merchant.public_pem)
    message = f"{APPID}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n".encode()
    assert crypto.signature_valid(merchant_key, message, params["paySign"])
    assert not crypto.signature_valid(merchant_key, message[:-1], params["paySign"])  # the last newline counts


@pytest.mark.gen_test(timeout=30)
async def test_prepay_needs_a_time_zone_on_time_expire(client):
    with pytest.raises(ValueError):
        await client.jsapi_prepay("gift-order-0001", "礼物", TOTAL, OPENID, datetime.now())


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


# -- our Authorization ---------------------------------------------------------------------------

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
async def test_signatures_and_ciphertext_follow_wechat_pay_documented_formats(client, fake):
    """Checked here by hand with `cryptography` alone, so that a format shared wrongly by the
    client and the fake cannot pass: the request string, the notify string, AES-256-GCM."""
    await client.jsapi_prepay("gift-order-0001", "礼物", TOTAL, OPENID, expire_in())
    [request] = fake.requests_to("/v3/pay/transactions/jsapi")
    auth = dict(re.findall(r'(\w+)="([^"]*)"', request.headers["Authorization"].split(" ", 1)[1]))
    assert request.headers["Authorization"].startswith("WECHATPAY2-SHA256-RSA2048 mchid=")
    assert (auth["mchid"], auth["serial_no"]) == (MCHID, fake.merchant.serial)
    merchant = serialization.load_pem_public_key(fake.merchant.public_pem)
    merchant.verify(base64.b64decode(auth["signature"]),
                    b"POST\n/v3/pay/transactions/jsapi\n" + f"{auth['timestamp']}\n{auth['nonce_str']}\n".encode()
                    + request.body + b"\n", padding.PKCS1v15(), hashes.SHA256())

    [delivery] = await fake.pay("gift-order-0001")
    wechat = serialization.load_pem_public_key(fake.public_key_pem)
    headers = delivery.headers
    assert headers["Wechatpay-Serial"] == fake.public_key_id
    wechat.verify(base64.b64decode(headers["Wechatpay-Signature"]),
                  f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n".encode() + delivery.body + b"\n",
                  padding.PKCS1v15(), hashes.SHA256())
    resource = json.loads(delivery.body)["resource"]
    plain = AESGCM(APIV3_KEY.encode()).decrypt(resource["nonce"].encode(), base64.b64decode(resource["ciphertext"]),
                                               resource["associated_data"].encode())
    assert json.loads(plain)["out_trade_no"] == "gift-order-0001"


@pytest.mark.gen_test(timeout=30)
async def test_a_request_signed_with_another_merchant_key_is_refused_as_final(make_client, fake):
    impostor = generate_merchant_keys()
    client = make_client(private_key=impostor.private_key)
    error = await failure(client.query_by_out_trade_no("gift-order-0001"))
    assert (error.status, error.code, error.retryable) == (401, "SIGN_ERROR", False)


# -- replies are verified before use -------------------------------------------------------------

@pytest.mark.parametrize("fault", ["bad_signature", "unsigned", "unknown_serial"])
@pytest.mark.gen_test(timeout=30)
async def test_a_reply_that_does_not_verify_is_refused(client, fake, fault):
    await client.jsapi_prepay("gift-order-0001", "礼物", TOTAL, OPENID, expire_in())
    assert (await client.query_by_out_trade_no("gift-order-0001"))["trade_state"] == "NOTPAY"
    fake.fail_next("/v3/pay/transactions/out-trade-no/", fault)
    error = await failure(client.query_by_out_trade_no("gift-order-0001"))
    assert (error.status, error.code, error.retryable) == (200, "LOCAL_REPLY_UNVERIFIED", False)
    assert isinstance(error.__cause__, VerificationError)


@pytest.mark.gen_test(timeout=30)
async def test_an_error_reply_with_a_bad_signature_is_refused_too(client, fake):
    fake.fail_next("/v3/pay/transactions/out-trade-no/", "bad_signature")
    error = await failure(client.query_by_out_trade_no("gift-order-0001"))
    assert (error.status, error.code) == (404, "LOCAL_REPLY_UNVERIFIED")


@pytest.mark.gen_test(timeout=30)
async def test_a_reply_outside_the_five_minute_window_is_refused(make_client, fake):
    late = make_client()
    late.verifier.clock = lambda: time.time() + 400  # our clock 400 s ahead of the reply's
    error = await failure(late.query_by_out_trade_no("gift-order-0001"))
    assert error.code == "LOCAL_REPLY_UNVERIFIED" and isinstance(error.__cause__, StaleTimestamp)


# -- notifies ------------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_a_paid_notify_verifies_and_decrypts_to_the_transaction(client, fake, receiver):
    await client.jsapi_prepay("gift-order-0001", "礼物", TOTAL, OPENID, expire_in())
    [delivery] = await fake.pay("gift-order-0001")
    assert delivery.status == 204 and delivery.event_type == "TRANSACTION.SUCCESS"
    notify = json.loads(delivery.body)
    assert notify["resource_type"] == "encrypt-resource" and notify["resource"]["algorithm"] == "AEAD_AES_256_GCM"
    assert notify["resource"]["original_type"] == "transaction" and "ciphertext" in notify["resource"]
    [transaction] = receiver.accepted
    assert {k: transaction[k] for k in ("appid", "mchid", "out_trade_no", "trade_type", "trade_state", "payer")} == {
        "appid": APPID, "mchid": MCHID, "out_trade_no": "gift-order-0001", "trade_type": "JSAPI",
        "trade_state": "SUCCESS", "payer": {"openid": OPENID}}
    assert transaction["amount"] == {"total": TOTAL, "payer_total": TOTAL, "currency": "CNY", "payer_currency": "CNY"}
    assert transaction["transaction_id"].startswith("4200") and len(transaction["transaction_id"]) == 28
    queried = await client.query_by_out_trade_no("gift-order-0001")
    assert queried["transaction_id"] == transaction["transaction_id"] and queried["trade_state"] == "SUCCESS"


@pytest.mark.parametrize("fault, error", [("bad_signature", BadSignature), ("unknown_serial", UnknownSerial),
                                          ("stale", StaleTimestamp), ("tampered_ciphertext", BadCiphertext)])
@pytest.mark.gen_test(timeout=30)
async def test_a_notify_that_fails_a_check_is_refused(client, fake, receiver, fault, error):
    await paid_order(client, fake)
    [delivery] = await fake.send_notify("gift-order-0001", fault=fault)
    assert delivery.status == 401 and json.loads(delivery.answer)["code"] == "FAIL"
    assert receiver.accepted == [] and [type(e) for e in receiver.refused] == [error]


@pytest.mark.gen_test(timeout=30)
async def test_a_notify_changed_after_signing_or_outside_five_minutes_is_refused(client, fake):
    await paid_order(client, fake)
    [delivery] = await fake.send_notify("gift-order-0001")
    assert client.verify_notify(delivery.headers, delivery.body)["trade_state"] == "SUCCESS"
    with pytest.raises(BadSignature):
        client.verify_notify(delivery.headers, delivery.body + b" ")
    with pytest.raises(BadSignature):
        client.verify_notify({**delivery.headers, "Wechatpay-Nonce": "X" * 32}, delivery.body)
    signed_at = int(delivery.headers["Wechatpay-Timestamp"])
    for offset, trusted in ((-299, True), (299, True), (-301, False), (301, False)):
        client.verifier.clock = lambda offset=offset: signed_at + offset
        if trusted:
            client.verify_notify(delivery.headers, delivery.body)
        else:
            with pytest.raises(StaleTimestamp):
                client.verify_notify(delivery.headers, delivery.body)
    client.verifier.clock = time.time
    for missing in ("Wechatpay-Signature", "Wechatpay-Serial", "Wechatpay-Timestamp", "Wechatpay-Nonce"):
        with pytest.raises(MalformedMessage):
            client.verify_notify({k: v for k, v in delivery.headers.items() if k != missing}, delivery.body)
    for body in (b"[1]", b"{}", b"not json"):  # signed, but not a notify
        headers = fake.signature_headers(body, "public_key")
        with pytest.raises(MalformedMessage):
            client.verify_notify(headers, body)


@pytest.mark.gen_test(timeout=30)
async def test_a_refund_notify_is_not_taken_for_a_payment(client, fake):
    await paid_order(client, fake)
    await client.refund("gift-order-0001", "gift-order-0001-r1", 100, TOTAL, "奖品退回")
    [delivery] = await fake.complete_refund("gift-order-0001-r1")
    assert client.verify_notify(delivery.headers, delivery.body, expect="refund")["refund_status"] == "SUCCESS"
    with pytest.raises(MalformedMessage):
        client.verify_notify(delivery.headers, delivery.body, expect="transaction")


@pytest.mark.gen_test(timeout=30)
async def test_duplicate_concurrent_and_late_notifies_all_verify_to_the_same_transaction(client, fake, receiver):
    await client.jsapi_prepay("gift-order-0001", "礼物", TOTAL, OPENID, expire_in())
    await fake.pay("gift-order-0001")
    copies = await fake.send_notify("gift-order-0001", copies=8)
    late = await fake.send_notify("gift-order-0001", delay=0.3)
    assert [d.status for d in copies + late] == [204] * 9
    assert len(receiver.accepted) == 10 and all(t == receiver.accepted[0] for t in receiver.accepted)
    assert len({d.headers["Wechatpay-Nonce"] for d in copies}) == 8  # each one signed afresh


@pytest.mark.gen_test(timeout=30)
async def test_a_notify_with_a_wrong_amount_verifies_and_carries_the_amount_for_the_caller_to_refuse(
        client, fake, receiver):
    await paid_order(client, fake)
    [delivery] = await fake.send_notify("gift-order-0001", fault="wrong_amount")
    assert delivery.status == 204
    [transaction] = receiver.accepted
    assert transaction["out_trade_no"] == "gift-order-0001" and transaction["amount"]["total"] != TOTAL


@pytest.mark.gen_test(timeout=30)
async def test_public_key_mode_and_certificate_mode_each_verify_their_own_signatures(make_client, fake, receiver):
    by_certificate = make_client(mode="certificate")
    await by_certificate.jsapi_prepay("gift-order-0001", "礼物", TOTAL, OPENID, expire_in())
    assert "Wechatpay-Serial" not in fake.requests_to("/v3/pay/transactions/jsapi")[-1].headers
    await fake.pay("gift-order-0001", notify=False)
    assert (await fake.send_notify("gift-order-0001", signer="certificate"))[0].status == 204
    assert (await fake.send_notify("gift-order-0001", signer="public_key"))[0].status == 401
    assert type(receiver.refused[-1]) is UnknownSerial

    by_public_key = make_client(mode="public_key")
    assert (await by_public_key.query_by_out_trade_no("gift-order-0001"))["trade_state"] == "SUCCESS"
    assert fake.requests_to("/v3/pay/transactions/out-trade-no/")[-1].headers["Wechatpay-Serial"] == fake.public_key_id
    assert (await fake.send_notify("gift-order-0001", signer="public_key"))[0].status == 204
    assert (await fake.send_notify("gift-order-0001", signer="certificate"))[0].status == 401
    assert type(receiver.refused[-1]) is UnknownSerial


@pytest.mark.gen_test(timeout=30)
async def test_while_migrating_both_keys_verify_notifies(make_client, fake, receiver):
    make_client(mode="both")
    await paid_order(receiver.client, fake)
    deliveries = [*await fake.send_notify("gift-order-0001", signer="certificate"),
                  *await fake.send_notify("gift-order-0001", signer="public_key")]
    assert [d.status for d in deliveries] == [204, 204] and receiver.refused == []
    assert {d.headers["Wechatpay-Serial"] for d in deliveries} == {fake.public_key_id, fake.certificate_serial}


# -- query and close -----------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_query_and_close_round_trips_and_their_error_codes(client, fake):
    error = await failure(client.query_by_out_trade_no("gift-order-none"))
    assert (error.status, error.code, error.retryable) == (404, "ORDERNOTEXIST", False)

    await client.jsapi_prepay("gift-order-0001", "礼物", TOTAL, OPENID, expire_in())
    unpaid = await client.query_by_out_trade_no("gift-order-0001")
    assert unpaid["trade_state"] == "NOTPAY" and "transaction_id" not in unpaid
    await fake.pay("gift-order-0001", notify=False)
    assert (await client.query_by_out_trade_no("gift-order-0001"))["trade_state"] == "SUCCESS"
    error = await failure(client.close("gift-order-0001"))
    assert (error.status, error.code, error.retryable) == (400, "ORDERPAID", False)
    error = await failure(client.jsapi_prepay("gift-order-0001", "礼物", TOTAL, OPENID, expire_in()))
    assert error.code == "ORDERPAID"

    await client.jsapi_prepay("gift-order-0002", "礼物", TOTAL, OPENID, expire_in())
    assert await client.close("gift-order-0002") is None
    assert await client.close("gift-order-0002") is None  # closing twice is no error
    assert (await client.query_by_out_trade_no("gift-order-0002"))["trade_state"] == "CLOSED"
    assert fake.requests_to("/v3/pay/transactions/out-trade-no/gift-order-0002/close")[0].json() == {"mchid": MCHID}
    error = await failure(client.jsapi_prepay("gift-order-0002", "礼物", TOTAL, OPENID, expire_in()))
    assert (error.code, error.retryable) == ("ORDER_CLOSED", False)
    error = await failure(client.close("gift-order-none"))
    assert (error.status, error.code) == (404, "ORDERNOTEXIST")


# -- refunds -------------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_a_refund_round_trip_ends_in_a_verified_refund_notify(client, fake, receiver):
    await paid_order(client, fake)
    refund = await client.refund("gift-order-0001", "gift-order-0001-r1", 500, TOTAL, "奖品未送出")
    assert refund["status"] == "PROCESSING" and refund["out_refund_no"] == "gift-order-0001-r1"
    assert (refund["amount"]["refund"], refund["amount"]["total"]) == (500, TOTAL)
    sent = fake.requests_to("/v3/refund/domestic/refunds", "POST")[0].json()
    assert sent == {"out_trade_no": "gift-order-0001", "out_refund_no": "gift-order-0001-r1",
                    "reason": "奖品未送出",
                    "amount": {"refund": 500, "total": TOTAL, "currency": "CNY"},
                    "notify_url": receiver.url("/refund/notify")}
    assert (await client.query_refund("gift-order-0001-r1"))["status"] == "PROCESSING"

    [delivery] = await fake.complete_refund("gift-order-0001-r1", "SUCCESS")
    assert (delivery.status, delivery.event_type) == (204, "REFUND.SUCCESS")
    [notice] = receiver.accepted
    assert (notice["out_refund_no"], notice["refund_id"], notice["refund_status"]) == (
        "gift-order-0001-r1", refund["refund_id"], "SUCCESS")
    assert notice["amount"]["refund"] == 500 and notice["mchid"] == MCHID
    finished = await client.query_refund("gift-order-0001-r1")
    assert finished["status"] == "SUCCESS" and finished["success_time"]
    assert (await client.query_by_out_trade_no("gift-order-0001"))["trade_state"] == "REFUND"


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
        await until(lambda: len(retrying.deliveries) == 3)
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


# -- what is worth trying again ------------------------------------------------------------------

@pytest.mark.parametrize("answer, status, code, retryable", [
    (500, 500, None, True), (502, 502, None, True), (503, 503, None, True),
    ("SYSTEM_ERROR", 500, "SYSTEM_ERROR", True), ("FREQUENCY_LIMITED", 429, "FREQUENCY_LIMITED", True),
    ("drop", None, None, True), ("apply_then_drop", None, None, True),
    ("PARAM_ERROR", 400, "PARAM_ERROR", False), ("ORDERNOTEXIST", 404, "ORDERNOTEXIST", False),
    ("NO_AUTH", 403, "NO_AUTH", False), ("INVALID_REQUEST", 400, "INVALID_REQUEST", False)])
@pytest.mark.gen_test(timeout=30)
async def test_network_failures_5xx_system_error_and_frequency_limited_are_retryable_others_final(
        client, fake, answer, status, code, retryable):
    await client.jsapi_prepay("gift-order-0001", "礼物", TOTAL, OPENID, expire_in())
    fake.fail_next("/v3/pay/transactions/out-trade-no/", answer)
    error = await failure(client.query_by_out_trade_no("gift-order-0001"))
    assert (error.status, error.code, error.retryable) == (status, code, retryable)
    assert (await client.query_by_out_trade_no("gift-order-0001"))["trade_state"] == "NOTPAY"


@pytest.mark.gen_test(timeout=30)
async def test_a_timeout_and_an_unreachable_server_are_retryable(make_client, fake):
    impatient = make_client(timeout=0.5)
    fake.slow_seconds = 5
    fake.fail_next("/v3/pay/transactions/out-trade-no/", "timeout")
    error = await failure(impatient.query_by_out_trade_no("gift-order-0001"))
    assert (error.status, error.code, error.retryable) == (None, None, True)
    await paid_order(impatient, fake)
    fake.fail_next("/v3/refund/domestic/refunds", "apply_then_timeout")
    error = await failure(impatient.refund("gift-order-0001", "r-1", 100, TOTAL, "退回"))
    assert (error.status, error.retryable) == (None, True) and len(fake.refunds_of("gift-order-0001")) == 1
    sockets = bind_sockets(0, "127.0.0.1")
    closed_port = sockets[0].getsockname()[1]
    sockets[0].close()
    nowhere = make_client(api_base=f"http://127.0.0.1:{closed_port}")
    error = await failure(nowhere.query_by_out_trade_no("gift-order-0001"))
    assert (error.status, error.retryable) == (None, True)


# -- configuration and secrets -------------------------------------------------------------------

@pytest.fixture
def key_files(fake, tmp_path):
    """The merchant key, the fake's public key and its platform certificate as PEM files."""
    files = {"private": tmp_path / "apiclient_key.pem", "public": tmp_path / "pub_key.pem",
             "certificate": tmp_path / "wechatpay_cert.pem"}
    files["private"].write_bytes(fake.merchant.private_pem)
    files["public"].write_bytes(fake.public_key_pem)
    files["certificate"].write_bytes(fake.certificate_pem)
    return files


def environment(fake, key_files, **changes) -> dict[str, str]:
    env = {"WECHATPAY_MCHID": MCHID, "WECHAT_APPID": APPID, "WECHATPAY_APIV3_KEY": APIV3_KEY,
           "WECHATPAY_PRIVATE_KEY_FILE": str(key_files["private"]), "WECHATPAY_CERT_SERIAL": fake.merchant.serial,
           "WECHATPAY_PUBLIC_KEY_FILE": str(key_files["public"]), "WECHATPAY_PUBLIC_KEY_ID": fake.public_key_id,
           "WECHATPAY_PLATFORM_CERT_FILES": str(key_files["certificate"]), "WECHATPAY_API_BASE": fake.url,
           "WECHATPAY_NOTIFY_URL": "http://127.0.0.1:8888/api/payment/wechat/notify"}
    env.update(changes)
    return {k: v for k, v in env.items() if v is not None}


@pytest.mark.gen_test(timeout=30)
async def test_a_configuration_loaded_from_files_and_environment_works_against_the_fake(fake, key_files):
    config = WeChatPayConfig.from_environment(environment(fake, key_files))
    assert set(config.verifier_keys) == {fake.public_key_id, fake.certificate_serial}
    assert config.public_key_id == fake.public_key_id and config.refund_notify_url is None
    client = WeChatPayClient(config)
    assert await client.jsapi_prepay("gift-order-0001", "礼物", TOTAL, OPENID, expire_in())
    production = WeChatPayConfig.from_environment(environment(fake, key_files, WECHATPAY_API_BASE=None,
                                                              WECHATPAY_PLATFORM_CERT_FILES=None))
    assert production.api_base == "https://api.mch.weixin.qq.com"
    assert list(production.verifier_keys) == [fake.public_key_id]


@pytest.mark.parametrize("url, accepted", [
    ("https://gifts.example.com/api/payment/wechat/notify", True), ("http://127.0.0.1:8888/notify", True),
    ("http://localhost:8888/notify", True), ("http://[::1]:8888/notify", True),
    ("http://gifts.example.com/api/payment/wechat/notify", False), ("http://10.0.0.5/notify", False),
    ("https://gifts.example.com/notify?order=1", False), ("ftp://gifts.example.com/notify", False), ("", False)])
def test_the_notify_url_is_https_except_on_a_loopback_host(fake, key_files, url, accepted):
    env = environment(fake, key_files, WECHATPAY_NOTIFY_URL=url)
    if accepted:
        assert WeChatPayConfig.from_environment(env).notify_url == url
    else:
        with pytest.raises(ConfigError, match="WECHATPAY_NOTIFY_URL"):
            WeChatPayConfig.from_environment(env)


@pytest.mark.parametrize("changes, names", [
    ({"WECHATPAY_PRIVATE_KEY_FILE": None}, "WECHATPAY_PRIVATE_KEY_FILE"),
    ({"WECHATPAY_PRIVATE_KEY_FILE": "/nonexistent/apiclient_key.pem"}, "WECHATPAY_PRIVATE_KEY_FILE"),
    ({"WECHATPAY_MCHID": None}, "WECHATPAY_MCHID"),
    ({"WECHAT_APPID": None}, "WECHAT_APPID"),
    ({"WECHATPAY_APIV3_KEY": APIV3_KEY[:-1]}, "WECHATPAY_APIV3_KEY"),
    ({"WECHATPAY_CERT_SERIAL": "not-hex"}, "WECHATPAY_CERT_SERIAL"),
    ({"WECHATPAY_PUBLIC_KEY_ID": None}, "WECHATPAY_PUBLIC_KEY_FILE and WECHATPAY_PUBLIC_KEY_ID"),
    ({"WECHATPAY_PUBLIC_KEY_ID": "0114000"}, "WECHATPAY_PUBLIC_KEY_ID"),
    ({"WECHATPAY_PUBLIC_KEY_FILE": None, "WECHATPAY_PUBLIC_KEY_ID": None, "WECHATPAY_PLATFORM_CERT_FILES": None},
     "no WeChat Pay key"),
    ({"WECHATPAY_API_BASE": "http://api.mch.weixin.qq.com"}, "WECHATPAY_API_BASE"),
    ({"WECHATPAY_REFUND_NOTIFY_URL": "http://gifts.example.com/refund"}, "WECHATPAY_REFUND_NOTIFY_URL")])
def test_a_wrong_configuration_is_refused_naming_the_setting(fake, key_files, changes, names):
    with pytest.raises(ConfigError, match=names):
        WeChatPayConfig.from_environment(environment(fake, key_files, **changes))


@pytest.mark.parametrize("which", ["private", "public", "certificate"])
def test_an_unreadable_key_file_is_named_without_its_content(fake, key_files, which):
    key_files[which].write_text("-----BEGIN PRIVATE KEY-----\nsecret-looking-garbage\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError) as caught:
        WeChatPayConfig.from_environment(environment(fake, key_files))
    assert str(key_files[which]) in str(caught.value) and "garbage" not in str(caught.value)


@pytest.mark.gen_test(timeout=30)
async def test_secrets_never_reach_logs_errors_or_reprs(make_client, fake, caplog):
    caplog.set_level(logging.DEBUG)
    client = make_client()
    secret_texts = [APIV3_KEY, *fake.merchant.private_pem.decode().splitlines()[1:-1]]
    errors: list[Exception] = []
    for answer in ("SYSTEM_ERROR", 500, "bad_signature", "drop"):
        fake.fail_next("/v3/pay/transactions/out-trade-no/", answer)
        errors.append(await failure(client.query_by_out_trade_no("gift-order-0001")))
    errors.append(await failure(make_client(private_key=generate_merchant_keys().private_key)
                                .query_by_out_trade_no("gift-order-0001")))
    with pytest.raises(ConfigError) as caught:
        WeChatPayConfig(**{**client.config.__dict__, "apiv3_key": APIV3_KEY[:-1]})
    errors.append(caught.value)
    await paid_order(client, fake)
    for fault in ("tampered_ciphertext", "bad_signature"):
        await fake.send_notify("gift-order-0001", fault=fault)
    texts = [caplog.text, repr(client.config), *(str(e) for e in errors)]
    assert caplog.records, "the failures are logged"
    for text in texts:
        for secret in secret_texts:
            assert secret not in text
