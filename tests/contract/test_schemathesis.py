"""Schemathesis, the property-based API fuzzer, against the real server (server.py as a child
process, the embedded engine) with its own OpenAPI description: for a bounded number of examples
per operation, no answer is a 5xx, every answer has a documented status, content type and
schema, v1 routes refuse what their schema refuses, and routes that need a key refuse requests
without one. Half the cases use real data (a valid login key, an existing gift), so the fuzzer
reaches past the first refusal. /ws is fuzzed by tests/contract/test_ws_fuzz.py instead."""
import json
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, ignored_auth,
                                               negative_data_rejection, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

from handlers.openapi import description
from tests.api import ADMIN_TOKEN
from tests.fakes.wechat import FakeWeChat
from tests.servers import ServerProcess, uri_with_db

# Examples per operation and mode: about 20 operations at a few milliseconds a request keep
# the whole run well under two minutes on the CI machine.
MAX_EXAMPLES = 60
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, ignored_auth]


@dataclass
class Live:
    """The server under test and real data in it."""

    server: ServerProcess
    member_key: str  # a member who joined every gift
    sender_key: str  # the gifts' sender
    order_ids: list[str]


def post(url: str, body: dict, token: str = "") -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={
        "Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def live(engine_uri):
    fake = FakeWeChat().start()
    server = ServerProcess(uri_with_db(engine_uri, "t_contract_" + uuid.uuid4().hex[:8]), fake.url, "--dev")
    server.start()
    try:
        base = server.base_url
        login = lambda code: post(base + "/api/member/code/login", {"code": code})["data"]["login_key"]
        member, sender = login("fuzzer"), login("sender")
        order_ids = [post(base + "/api/admin/gifts", {"sender_openid": "o_sender", "method": method, "items": items,
                                                      **extra}, ADMIN_TOKEN)["order_id"]
                     for method, items, extra in (
                         ("direct", [{"name": "茶"}] * 50, {}),
                         ("full", [{"name": "杯"}], {"open_number": 1000}),
                         ("timed", [{"name": "书"}], {"open_at": (datetime.now(timezone.utc)
                                                                  + timedelta(days=30)).isoformat()}),
                         ("full", [{"name": "笔"}], {"open_number": 1}))]
        for order_id in order_ids:
            post(base + "/api/sharagift/JoinGift", {"login_key": member, "order_id": order_id})
        yield Live(server, member, sender, order_ids)
    finally:
        server.stop()
        fake.stop()
    assert "Traceback" not in server.log_text(), server.log_text()[-3000:]


@pytest.fixture(scope="module")
def api_schema(live):
    return schemathesis.openapi.from_url(live.server.base_url + "/api/openapi.json")


def steer(case, live: Live) -> None:
    """Real data for about half the cases, chosen from the drawn data itself (so a failing
    example replays the same way): an existing gift, a valid key in a legacy body."""
    params = case.path_parameters or {}
    drawn = json.dumps([params, case.body if isinstance(case.body, (dict, list, str)) else None], default=str)
    choice = sum(drawn.encode()) % 4
    if "order_id" in params and choice % 2 == 0:
        params["order_id"] = live.order_ids[choice]
    if isinstance(case.body, dict) and case.operation.path.startswith(("/api/sharagift/", "/api/member/code/getUserInfo")):
        if choice < 2:
            case.body["login_key"] = live.member_key
        if choice == 0 and "order_id" in case.body:
            case.body["order_id"] = live.order_ids[len(drawn) % len(live.order_ids)]


def authorization(case, live: Live) -> dict[str, str]:
    """The credentials the operation's security names: the admin token, or a member's key (the
    sender's on the sender's routes)."""
    schemes = {name for requirement in case.operation.definition.raw.get("security", []) for name in requirement}
    if "adminToken" in schemes:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    if "loginKey" in schemes:
        key = live.sender_key if case.operation.path.endswith(("/participants", "/open")) else live.member_key
        return {"Authorization": f"Bearer {key}"}
    return {}


# Every described operation but the websocket's (its own fuzzer: tests/contract/test_ws_fuzz.py).
OPERATIONS = [(path, method) for path, item in description()["paths"].items() if path != "/ws" for method in item]
LEGACY = ("/api/sharagift/", "/api/member/code/")


@pytest.mark.parametrize("path, method", OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_the_server_keeps_its_contract_under_fuzzing(live, api_schema, path, method):
    operation = api_schema[path][method.upper()]
    # The seed's routes answer 200 with an error envelope to anything: only the others must
    # refuse with a 4xx what their schema refuses.
    negative = not path.startswith(LEGACY) and (operation.definition.raw.get("parameters")
                                                 or operation.definition.raw.get("requestBody"))
    for mode in [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if negative else []):
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case) -> None:  # called at once, in this iteration: `mode` is this loop's
            headers = authorization(case, live)
            if mode.is_positive:
                steer(case, live)
            elif "authorization" in {name.lower() for name in case.headers or {}}:
                headers = {}  # the fuzzer's own (malformed) credentials are what it tests
            case.call_and_validate(headers=headers,
                                   checks=CHECKS + ([] if path.startswith(LEGACY) else [negative_data_rejection]))

        try:
            run()
        except Unsatisfiable:
            assert mode.is_negative  # nothing in this operation's schema can be made invalid
