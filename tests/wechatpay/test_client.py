"""WeChat Pay v3: our client against the local stand-in over real HTTP. Requests carry our
signature, replies and notifies are trusted only once verified, errors say whether to try again,
and the configuration is checked and keeps its secrets. (What the stand-in itself does is tested
in tests/fakes/test_wechatpay.py.)"""
import json
import logging
import time
from datetime import datetime

import pytest
from tornado.netutil import bind_sockets

from wechatpay import crypto
from wechatpay.client import BadCiphertext, BadSignature, MalformedMessage, StaleTimestamp, UnknownSerial, VerificationError, WeChatPayClient, WeChatPayConfig
from fakes.wechatpay import APIV3_KEY, APPID, MCHID, generate_merchant_keys
from lottery.errors import ConfigError
from tests.wechatpay.support import OPENID, TOTAL, expire_in, failure, paid_order


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


# -- our Authorization ---------------------------------------------------------------------------

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
async def test_a_notify_signed_exactly_five_minutes_either_side_of_our_clock_is_trusted_and_not_a_moment_more(
        client, fake):
    await paid_order(client, fake)
    [delivery] = await fake.send_notify("gift-order-0001")
    signed_at = int(delivery.headers["Wechatpay-Timestamp"])
    for offset, trusted in ((-300, True), (300, True), (-300.5, False), (300.5, False)):
        client.verifier.clock = lambda offset=offset: signed_at + offset
        if trusted:
            assert client.verify_notify(delivery.headers, delivery.body)["trade_state"] == "SUCCESS"
        else:
            with pytest.raises(StaleTimestamp):
                client.verify_notify(delivery.headers, delivery.body)


@pytest.mark.gen_test(timeout=30)
async def test_a_notify_of_another_signature_type_is_refused_and_each_refusal_names_what_failed(client, fake):
    await paid_order(client, fake)
    [delivery] = await fake.send_notify("gift-order-0001")
    headers, body = delivery.headers, delivery.body
    signed_at, serial = int(headers["Wechatpay-Timestamp"]), headers["Wechatpay-Serial"]
    client.verifier.clock = lambda: signed_at
    cases = [
        ({"Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"}, MalformedMessage,
         "signature type 'WECHATPAY2-SM2-WITH-SM3' is not WECHATPAY2-SHA256-RSA2048"),
        ({"Wechatpay-Signature-Type": "T" * 50}, MalformedMessage, f"signature type {'T' * 40!r} is not WECHATPAY2-SHA256-RSA2048"),
        ({"Wechatpay-Nonce": ""}, MalformedMessage,
         "not signed: a Wechatpay-Serial/Signature/Timestamp/Nonce header is missing"),
        ({"Wechatpay-Serial": "S" * 70}, UnknownSerial, f"no WeChat Pay key with serial {'S' * 64!r}"),
        ({"Wechatpay-Timestamp": "soon"}, MalformedMessage, "Wechatpay-Timestamp is not a number"),
        ({"Wechatpay-Timestamp": str(signed_at - 400)}, StaleTimestamp, "timestamp -400 s from now (at most 300 s allowed)"),
        ({"Wechatpay-Signature": headers["Wechatpay-Signature"][::-1]}, BadSignature,
         f"signature does not verify with key {serial!r}"),
        # The same signature with a character base64 does not have: refused, never skipped over.
        ({"Wechatpay-Signature": headers["Wechatpay-Signature"][:10] + "!" + headers["Wechatpay-Signature"][10:]},
         BadSignature, f"signature does not verify with key {serial!r}"),
    ]
    for change, error, why in cases:
        with pytest.raises(error) as refused:
            client.verify_notify({**headers, **change}, body)
        assert str(refused.value) == why, change


@pytest.mark.gen_test(timeout=30)
async def test_a_refund_notify_is_not_taken_for_a_payment(client, fake):
    await paid_order(client, fake)
    await client.refund("gift-order-0001", "gift-order-0001-r1", 100, TOTAL, "奖品退回")
    [delivery] = await fake.complete_refund("gift-order-0001-r1")
    assert client.verify_notify(delivery.headers, delivery.body, expect="refund")["refund_status"] == "SUCCESS"
    with pytest.raises(MalformedMessage):
        client.verify_notify(delivery.headers, delivery.body, expect="transaction")


@pytest.mark.gen_test(timeout=30)
async def test_a_signed_notify_that_is_not_an_encrypted_resource_of_the_expected_kind_is_refused_naming_why(
        client, fake):
    await paid_order(client, fake)
    await client.refund("gift-order-0001", "gift-order-0001-r1", 100, TOTAL, "奖品退回")
    [delivery] = await fake.complete_refund("gift-order-0001-r1")
    notify = json.loads(delivery.body)
    plain = {**notify, "resource_type": "plain-resource"}  # the resource itself intact
    cases = [(b"not json", "notify body is not JSON"), (b"[1]", "notify body is not a JSON object"),
             (b"{}", "notify has no encrypted resource"),
             (json.dumps(plain).encode(), "notify has no encrypted resource"),
             (json.dumps({**notify, "resource": "ciphertext"}).encode(), "notify has no encrypted resource")]
    for body, why in cases:
        with pytest.raises(MalformedMessage) as refused:
            client.verify_notify(fake.signature_headers(body, "public_key"), body)
        assert str(refused.value) == why, body
    with pytest.raises(MalformedMessage) as refused:
        client.verify_notify(delivery.headers, delivery.body, expect="transaction")
    assert str(refused.value) == "notify carries a 'refund', not a 'transaction'"
    long = json.dumps({**notify, "resource": {**notify["resource"], "original_type": "x" * 40}}).encode()
    with pytest.raises(MalformedMessage) as refused:  # a sender's string is cut to 32 characters
        client.verify_notify(fake.signature_headers(long, "public_key"), long, expect="transaction")
    assert str(refused.value) == f"notify carries a {'x' * 32!r}, not a 'transaction'"


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
