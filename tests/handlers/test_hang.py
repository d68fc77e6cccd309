"""A database that hangs instead of dying (a stalled disk, a partition, a primary stepping down):
the embedded engine is stopped with SIGSTOP mid-storm (joins, a payment notify, a refund round,
the pre-check, readiness, a websocket's auth) and resumed. Every answer comes within the
request's budget (`request_timeout`, PyMongo's client-side timeout): v1 503 with Retry-After, the
seed's envelope error, readiness 503, the websocket closed with 1013, a join whose write got no
answer `join_outcome_unknown`. Once the engine resumes everything carries on by itself, and
nothing is lost or doubled: the full gift has exactly its seats, each member joined once, the
order paid during the hang is paid once, the refund is made once, and the money adds up."""
import asyncio
import json
import os
import signal
from datetime import datetime, timedelta, timezone

import pymongo
import pytest
from tornado.httpclient import HTTPClientError

from lottery.accounts import key_digest
from lottery.errors import JoinOutcomeUnknown
from lottery.storage.connection import ensure_indexes
from lottery.storage.engine import EmbeddedEngine
from tests.api import key_issued_elsewhere
from tests.conftest import client_on
from tests.gifts import make_due
from tests.shop import bought_gift, check_money, drain, order, product
from tests.waiting import until
from tests.ws import WsClient

BUDGET = 2.5  # the app's request_timeout (production's default)
# The bound every answer is held to: the budget and a margin for a busy machine. A request the
# hung database held past it fails the test (the client gives up: HTTP 599).
ANSWERED_WITHIN = 4.5
DEFINITE = {"joined", "already_joined", "full"}


@pytest.fixture
def engine():
    """A private engine, so that the test may stop it; resumed before it is stopped."""
    own = EmbeddedEngine(":memory:")
    own.start()
    yield own
    os.kill(own.pid, signal.SIGCONT)
    own.stop()


@pytest.fixture
def app(engine, build_app, io_loop, payments):
    client = client_on(io_loop, engine.uri)
    db = client["hang"]
    io_loop.run_sync(lambda: ensure_indexes(db))
    # A draw cut short by the hang leaves its lease behind: a short one, so the test's next sweep
    # resumes it soon.
    yield build_app(db, payments=payments, request_timeout=BUDGET, draw_lease_seconds=2.0)
    io_loop.run_sync(client.close)


async def fetch(api, method: str, path: str, body: dict | None = None, token: str | None = None):
    """(status, headers, decoded body); a request unanswered within ANSWERED_WITHIN raises."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    response = await api.http.fetch(f"{api.base_url}{path}", method=method, headers=headers,
                                    body=json.dumps(body) if body is not None else None,
                                    raise_error=False, request_timeout=ANSWERED_WITHIN)
    if response.code == 599:
        raise AssertionError(f"{method} {path}: no answer within {ANSWERED_WITHIN} s while the database hung")
    return response.code, response.headers, json.loads(response.body) if response.body else None


async def join(api, key: str, order_id: str) -> str:
    """One attempt: "joined", or the refusal's code."""
    status, headers, answer = await fetch(api, "POST", f"/api/v1/gifts/{order_id}/join", {}, key)
    if status == 200:
        return "joined"
    if status == 503:
        assert headers["Retry-After"] == "2"
    return answer["error"]["code"]


@pytest.mark.gen_test(timeout=180)
async def test_a_database_that_hangs_mid_storm_answers_within_the_budget_and_loses_or_doubles_nothing(
        api, app, engine, pay_fake, base_url):
    db, refunds, draws = app.settings["db"], app.settings["refunds"], app.settings["draws"]
    pay_fake.notify_retry_delays = (0.5, 1.0, 2.0, 4.0, 8.0)  # WeChat Pay sends an unanswered notify again
    cup = await product(api, "保温杯", 12900, 10)
    buyer, later_buyer = await api.login("buyer"), await api.login("later")
    # A paid full gift short of joiners at its deadline: its item is registered for a refund.
    unfilled = await bought_gift(api, pay_fake, buyer, (cup, 1), method="full", open_number=5)
    await make_due(db, unfilled)
    assert await draws.sweep() == 1
    status, unpaid = await order(api, later_buyer, (cup, 1), method="direct")
    assert status == 201
    storm = await api.create_gift(method="full", open_number=20)
    keys = [await api.login(f"racer{i}") for i in range(30)]
    # A timed gift due when the hang begins: its draw runs into it.
    timed = await api.create_gift(method="timed", open_at=(datetime.now(timezone.utc) + timedelta(hours=1)).isoformat(),
                                  items=[{"name": "月饼"}] * 2)
    for key in keys[:6]:
        assert await join(api, key, timed) == "joined"
    await make_due(db, timed)
    waiting = await WsClient.connect(base_url)
    unseen_key = await key_issued_elsewhere(db, "o_watcher")  # its auth below meets the hang

    os.kill(engine.pid, signal.SIGSTOP)
    try:
        first = await asyncio.gather(*(join(api, key, storm) for key in keys))
        precheck = (await fetch(api, "POST", "/api/sharagift/checkHasJoin",
                                {"login_key": keys[0], "order_id": storm}))[2]
        readiness = await fetch(api, "GET", "/readyz")
        waiting.send({"type": "auth", "login_key": unseen_key})
        try:
            closed = await waiting.closed(timeout=ANSWERED_WITHIN)
        except asyncio.TimeoutError:
            # Seen twice in loaded whole-suite runs when the auth used a racer's key, which the
            # storm had asked for too: say where the key lookup and the socket stood.
            lookup = app.settings["accounts"].keys
            raise AssertionError(f"the websocket was not closed within {ANSWERED_WITHIN} s; key lookup: "
                                 f"{lookup._slots} reads under way, {len(lookup._queued)} keys queued, "
                                 f"{len(lookup._waiting)} waiting, {lookup.reads} reads made, the key "
                                 f"{'' if key_digest(unseen_key) in lookup._known else 'not '}remembered; "
                                 f"frames received: {waiting.received}") from None
        [notify] = await pay_fake.pay(unpaid["order_id"])  # its notify reaches us while we hang
        with pytest.raises(pymongo.errors.PyMongoError) as refund_round:
            with pymongo.timeout(BUDGET):
                await refunds.run_once()
        with pytest.raises(pymongo.errors.PyMongoError) as draw_round:
            with pymongo.timeout(BUDGET):
                await draws.sweep()
    finally:
        os.kill(engine.pid, signal.SIGCONT)

    assert set(first) <= DEFINITE | {"database_unavailable", "join_outcome_unknown"}, first
    assert {"database_unavailable", "join_outcome_unknown"} & set(first)  # the hang was felt
    assert precheck == {"code": "error", "message": "服务暂时不可用，请稍后再试", "data": None}
    assert readiness[0] == 503 and "database unreachable" in readiness[2]["reasons"]
    assert closed == 1013
    assert notify.status == 503  # WeChat Pay keeps it and sends it again
    assert refund_round.value.timeout or isinstance(refund_round.value, pymongo.errors.ConnectionFailure)
    assert draw_round.value.timeout or isinstance(draw_round.value, pymongo.errors.ConnectionFailure)

    # Resumed: whoever was told to try again does, until the answer is definite.
    async def settled(key: str, answer: str) -> str:
        for _ in range(100):
            if answer in DEFINITE:
                break
            await asyncio.sleep(0.3)
            answer = await join(api, key, storm)
        return answer
    final = await asyncio.gather(*(settled(key, answer) for key, answer in zip(keys, first)))
    seated = [key for key, answer in zip(keys, final) if answer in ("joined", "already_joined")]
    assert len(seated) == 20 and final.count("full") == 10
    assert await db.joins.count_documents({"order_id": storm}) == 20
    assert len(await db.joins.distinct("member_id", {"order_id": storm})) == 20

    async def opened() -> bool:
        await draws.sweep()
        return await db.gifts.count_documents({"_id": {"$in": [storm, timed]}, "status": "finished"}) == 2
    await until(opened, timeout=30)
    gift = await db.gifts.find_one({"_id": storm})
    assert len(gift["draw"]["winners"]) == 1  # one item, twenty participants: one winner
    # The draw the hang cut short: resumed once its lease lapsed, drawn once, by its proof.
    drawn = await db.gifts.find_one({"_id": timed})
    assert len(drawn["draw"]["winners"]) == len(set(drawn["draw"]["winners"])) == 2
    assert await db.proofs.count_documents({"_id": timed}) == 1
    proof = await draws.proof(timed)
    assert len(proof["participants"]) == 6 and len(proof["winners"]) == 2

    async def paid() -> bool:
        return (await db.gifts.find_one({"_id": unpaid["order_id"]}))["order"]["status"] == "paid"
    await until(paid, timeout=30)
    # The fake records a delivery when it sends it and its status when the answer comes.
    async def answered() -> int | None:
        return [d.status for d in pay_fake.deliveries if d.key == unpaid["order_id"]][-1]
    assert await until(answered, timeout=10) == 204
    await drain(refunds, pay_fake, db)
    assert len(pay_fake.refunds_of(unfilled)) == 1
    await check_money(db)
    stock = await db.products.find_one({"_id": cup})
    assert stock["stock"] == 10 - 2  # two cups sold, each once
    with pytest.raises(HTTPClientError):
        await api.http.fetch(f"{api.base_url}/api/v1/gifts/{storm}/join", method="POST", body="{}",
                             headers={"Authorization": f"Bearer {seated[0]}"})  # a retry now: already joined


@pytest.mark.gen_test(timeout=60)
async def test_a_join_whose_write_gets_no_answer_says_its_outcome_is_unknown_and_a_retry_is_safe(api, app, engine):
    gifts, db = app.settings["gifts"], app.settings["db"]
    storm = await api.create_gift(method="full", open_number=3)
    key = await api.login("tapper")
    member_id = await app.settings["accounts"].member_for(key)
    gift = await gifts.get(storm)  # read as the route reads it, before the hang
    os.kill(engine.pid, signal.SIGSTOP)
    try:
        with pytest.raises(JoinOutcomeUnknown):
            with pymongo.timeout(1.0):
                await gifts.join(storm, member_id, gift=gift)
    finally:
        os.kill(engine.pid, signal.SIGCONT)
    # The write may or may not have been applied while the engine was stopped; either way the
    # retry ends with the member joined once.
    status, _, answer = await fetch(api, "POST", f"/api/v1/gifts/{storm}/join", {}, key)
    assert (status, answer.get("error", {}).get("code") if status != 200 else "joined") in (
        (200, "joined"), (409, "already_joined"))
    assert await db.joins.count_documents({"order_id": storm, "member_id": member_id}) == 1
