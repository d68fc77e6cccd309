"""Schemathesis, the property-based API fuzzer, against the real server (server.py as a child
process, its own embedded engine, WeChat Pay at its local fake) with its own OpenAPI
description: for a bounded number of examples per operation, no answer is a 5xx, every answer
has a documented status, content type and schema, v1 routes refuse what their schema refuses,
and routes that need a key refuse requests without one. Half the cases use real data (a valid
login key, an existing gift, product, category, order of the member, claim), so the fuzzer
reaches past the first refusal. /ws is fuzzed by tests/contract/test_ws_fuzz.py instead, and
WeChat Pay's notifies by the forgery test at the end."""
import asyncio
import json
import os
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (content_type_conformance, ignored_auth,
                                               negative_data_rejection, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

from handlers.openapi import description
from fakes.wechatpay import FakeWeChatPay
from tests.api import ADMIN_TOKEN
from fakes.wechat import APPID, FakeWeChat
from tests.servers import ServerProcess
from tests.shop import ADDRESS, wechatpay_env

# Examples per operation and mode: about 65 operations at a few milliseconds a request, and
# hypothesis's generation, keep the whole run under half a minute of the CI machine's two cores. The same examples every run; for a deeper
# search, CONTRACT_EXAMPLES=300 CONTRACT_RANDOM=1 draws new ones.
MAX_EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", 20))
SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=not os.environ.get("CONTRACT_RANDOM"),
                    database=None, suppress_health_check=list(HealthCheck))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, ignored_auth]
# The seed's routes answer 200 with an error envelope to anything: they need not refuse with a
# 4xx what their schema refuses.
LEGACY = ("/api/sharagift/", "/api/member/code/", "/api/indexlist/", "/api/order/", "/api/payment/returnOrderData")
# WeChat Pay's notifies are trusted by a signature only WeChat Pay can make, over a resource
# encrypted with the APIv3 key: nothing the fuzzer generates can be accepted, so its cases would
# all stop at the first check. test_a_forged_notify_is_never_accepted_and_never_a_5xx fuzzes them
# with forgeries instead.
NOTIFIES = ("/api/payment/wechat/notify", "/api/payment/wechat/refund-notify")
# Routes whose `order_id` is an order of the member's (the buyer's), not a gift to join.
ORDER_ROUTES = ("/api/v1/orders/", "/api/dev/pay/", "/orders/", "/api/payment/returnOrderData")
# Routes of a gift's sender.
SENDER_ROUTES = ("/participants", "/open", "/claims", "/group")


@dataclass
class Live:
    """The server under test and real data in it."""

    server: ServerProcess
    pay_fake: FakeWeChatPay
    member_key: str  # a member who joined every gift, and bought `orders`
    sender_key: str  # the sender of the operator's gifts
    gift_ids: list[str]  # the operator's gifts, then the member's bought one
    orders: list[str]  # the member's orders: unpaid, then paid
    product_id: str
    category_id: str
    claim_ids: list[str]  # the member's claims
    senders: dict[str, str] = field(default_factory=dict)  # gift -> its sender's key, when not sender_key


def call(url: str, body: dict, token: str = "") -> dict:
    """POST `body` as JSON; the JSON answer."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={
        "Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    folder = tmp_path_factory.mktemp("contract")
    wechat, pay_fake = FakeWeChat().start(), FakeWeChatPay(appid=APPID).start()
    server = ServerProcess("", wechat.url, "--dev", f"--data_dir={folder / 'data'}",
                           f"--backup_dir={folder / 'backups'}")
    server.env.update(wechatpay_env(pay_fake, server.port, folder))
    server.start(timeout=60)
    try:
        base = server.base_url
        admin = lambda path, body: call(base + path, body, ADMIN_TOKEN)
        login = lambda code: call(base + "/api/member/code/login", {"code": code})["data"]["login_key"]
        member, sender = login("fuzzer"), login("sender")
        gift_ids = [admin("/api/admin/gifts", {"sender_openid": "o_sender", "method": method, "items": items,
                                               **extra})["order_id"]
                    for method, items, extra in (
                        ("direct", [{"name": "茶"}] * 50, {}),
                        ("full", [{"name": "杯"}], {"open_number": 1000}),
                        ("timed", [{"name": "书"}], {"open_at": (datetime.now(timezone.utc)
                                                                 + timedelta(days=30)).isoformat()}),
                        ("full", [{"name": "笔"}], {"open_number": 1}),
                        # Prize tiers (opened by the member's join: a tiered proof) and both entry
                        # conditions, so their fields and refusals are reached.
                        ("full", [{"name": "灯", "tier": 1}, {"name": "伞", "tier": 2, "tier_name": "参与奖"}],
                         {"open_number": 1, "pass_phrase": "芝麻开门"}),
                        ("full", [{"name": "碗"}], {"open_number": 10, "group_only": True}))]
        for order_id in gift_ids:
            call(base + "/api/sharagift/JoinGift", {"login_key": member, "order_id": order_id, "pass_phrase": "芝麻开门"})
        category_id = admin("/api/admin/categories", {"name": "零食"})["category_id"]
        product_id = admin("/api/admin/products", {"name": "咖啡券", "price": 100, "stock": 1_000_000,
                                                   "category_id": category_id})["product_id"]
        orders = [call(base + "/api/v1/orders", {"items": [{"product_id": product_id, "quantity": 2}],
                                                 "method": "direct", "wish": wish}, member)["order_id"]
                  for wish in ("unpaid", "paid")]
        [delivery] = asyncio.run(pay_fake.pay(orders[1]))
        assert delivery.status == 204, delivery
        call(base + "/api/sharagift/JoinGift", {"login_key": sender, "order_id": orders[1]})
        claim = call(f"{base}/api/v1/gifts/{gift_ids[0]}/claim", ADDRESS, member)
        yield Live(server, pay_fake, member, sender, gift_ids + orders[1:], orders, product_id, category_id,
                   [claim["claim_id"], f"{gift_ids[3]}:0"], {orders[1]: member})
    finally:
        server.stop()
        pay_fake.stop()
        wechat.stop()
    assert "Traceback" not in server.log_text(), server.log_text()[-3000:]


# How the server refuses what a schema refuses: Schemathesis's list, and 410 (a gift closed
# to joiners: refused before the body matters) and 413 (a JSON body over 64 KiB).
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "410", "413", "415", "422", "428", "429", "5xx"]


@pytest.fixture(scope="module")
def api_schema(live):
    config = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}})
    return schemathesis.openapi.from_url(live.server.base_url + "/api/openapi.json", config=config)


def steer(case, live: Live) -> None:
    """Real data for about half the cases, chosen from the drawn data itself (so a failing
    example replays the same way): an existing gift, order, product, category or claim, and a
    valid key in a seed route's body."""
    params = case.path_parameters or {}
    drawn = json.dumps([params, case.query, case.body if isinstance(case.body, (dict, list, str)) else None],
                       default=str, sort_keys=True)
    choice = sum(drawn.encode()) % 4  # 0: real ids and key, 1: a real key, 2: real ids, 3: as drawn
    if isinstance(case.body, dict) and case.operation.path.startswith(LEGACY) and choice < 2:
        case.body["login_key"] = live.member_key
    if choice % 2:
        return
    orders = live.orders if case.operation.path.startswith(ORDER_ROUTES) else live.gift_ids
    real = {"order_id": orders[len(drawn) % len(orders)], "product_id": live.product_id,
            "category_id": live.category_id, "category": live.category_id,
            "claim_id": live.claim_ids[len(drawn) % len(live.claim_ids)]}
    for fields in (params, case.query, case.body):
        if isinstance(fields, dict):
            fields.update({name: value for name, value in real.items() if name in fields})
    if isinstance(case.body, dict) and isinstance(case.body.get("items"), list):
        for line in case.body["items"]:
            if isinstance(line, dict) and "product_id" in line:
                line["product_id"] = live.product_id


def authorization(case, live: Live) -> dict[str, str]:
    """The credentials the operation's security names: the admin token, or a member's key (the
    sender's on the sender's routes)."""
    schemes = {name for requirement in case.operation.definition.raw.get("security", []) for name in requirement}
    if "adminToken" in schemes:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    if "loginKey" in schemes:
        key = live.member_key
        if case.operation.path.endswith(SENDER_ROUTES):
            key = live.senders.get((case.path_parameters or {}).get("order_id"), live.sender_key)
        return {"Authorization": f"Bearer {key}"}
    return {}


# The console's pages and forms answer the fuzzer, which has no session and no XSRF token, at
# the first step (303 to sign in, 403): a few examples show that; its forms are fuzzed with a
# session and the token in tests/handlers/test_console_forms.py.
CONSOLE = ("/admin", "/media/")
CONSOLE_SETTINGS = settings(SETTINGS, max_examples=min(MAX_EXAMPLES, 5))

# Every described operation but the websocket's and WeChat Pay's notifies (see above).
OPERATIONS = [(path, method) for path, item in description()["paths"].items()
              if path != "/ws" and path not in NOTIFIES for method in item]


@pytest.mark.parametrize("path, method", OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_the_server_keeps_its_contract_under_fuzzing(live, api_schema, path, method):
    operation = api_schema[path][method.upper()]
    negative = not path.startswith(LEGACY) and (operation.definition.raw.get("parameters")
                                                 or operation.definition.raw.get("requestBody"))
    for mode in [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if negative else []):
        @given(case=operation.as_strategy(generation_mode=mode))
        @(CONSOLE_SETTINGS if path.startswith(CONSOLE) else SETTINGS)
        def run(case) -> None:  # called at once, in this iteration: `mode` is this loop's
            if mode.is_positive:
                steer(case, live)
            headers = authorization(case, live)
            if mode.is_negative and "authorization" in {name.lower() for name in case.headers or {}}:
                headers = {}  # the fuzzer's own (malformed) credentials are what it tests
            case.call_and_validate(headers=headers,
                                   checks=CHECKS + ([] if path.startswith(LEGACY) else [negative_data_rejection]))

        try:
            run()
        except Unsatisfiable:
            assert mode.is_negative  # nothing in this operation's schema can be made invalid


# How a forged notify is signed: as the fuzzer drew its headers; by a key WeChat Pay does not
# hold; as WeChat Pay's own probes (WECHATPAY/SIGNTEST/...); by WeChat Pay's key but ten minutes
# ago; or by WeChat Pay's real key over a resource that is not encrypted with our APIv3 key.
FORGERIES = ("drawn", "unknown_serial", "bad_signature", "stale", "genuine_signature")


@pytest.mark.parametrize("path", NOTIFIES)
def test_a_forged_notify_is_never_accepted_and_never_a_5xx(live, api_schema, path):
    """Bodies as described (and not), and raw bytes, under forged signatures: always 401
    SIGN_ERROR with WeChat Pay's error body; never 204 (accepted), never a 5xx."""
    operation = api_schema[path]["POST"]
    bodies = st.one_of(st.just(None), st.binary(max_size=300))  # None: the case's own (JSON) body

    @given(case=st.one_of(operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                          operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)),
           forgery=st.sampled_from(FORGERIES), raw=bodies)
    @settings(SETTINGS, max_examples=2 * MAX_EXAMPLES)
    def run(case, forgery: str, raw: bytes | None) -> None:
        body = raw if raw is not None else json.dumps(case.body, ensure_ascii=False, default=str).encode()
        headers = {"Content-Type": "application/json"}
        if forgery != "drawn":
            fault = forgery if forgery in ("unknown_serial", "bad_signature") else None
            stale = int(datetime.now(timezone.utc).timestamp()) - 600 if forgery == "stale" else None
            headers.update(live.pay_fake.signature_headers(body, fault=fault, timestamp=stale))
        response = case.call(headers=headers, data=body)
        assert response.status_code == 401, (forgery, response.status_code, response.text)
        assert response.json()["code"] == "SIGN_ERROR"
        case.validate_response(response, checks=CHECKS)

    run()
