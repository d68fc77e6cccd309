"""The realtime channel over real websockets: results reach waiting pages however they connect,
drop, come back late, or sit behind another process; bad input never breaks a connection."""
import asyncio
import logging
import random
import sys
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import REGISTRY
from pymongo.errors import OperationFailure
from tornado.httpclient import HTTPClientError

from handlers.realtime import CLOSE_AUTH_TIMEOUT, CLOSE_BACKLOG, CLOSE_BAD_KEY, CLOSE_FLOOD
from lottery.live.hub import LiveHub
from lottery.storage import gifts as gift_store
from lottery.storage import joins as join_store
from tests.rawhttp import exchange, open_connections, request_bytes, status_of, where
from tests.gifts import make_due
from tests.servers import ServerProcess, uri_with_db
from tests.waiting import until
from tests.ws import WsClient


@pytest.fixture
def app(db, build_app, request):
    """The app; `@pytest.mark.parametrize("app", ["polling"], indirect=True)` forces polling."""
    polling = getattr(request, "param", "change_stream") == "polling"
    return build_app(hub=LiveHub(db, force_polling=polling, poll_interval=0.2, progress_interval=0.1))


@pytest.fixture
def hub(app) -> LiveHub:
    return app.settings["hub"]


def later(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()


async def subscribed(base_url: str, key: str, order_id: str, version: int | None = None) -> WsClient:
    client = await WsClient.connect(base_url, key)
    frame = {"type": "subscribe", "order_id": order_id}
    if version is not None:
        frame["version"] = version
    client.send(frame)
    return client


@pytest.mark.gen_test(timeout=60)
async def test_a_waiting_member_gets_the_result_the_moment_the_last_seat_opens_the_gift(api, base_url):
    order_id = await api.create_gift(method="full", open_number=2, items=[{"name": "保温杯"}])
    ann, bob = await api.login("ann"), await api.login("bob")
    await api.join(ann, order_id)
    client = await subscribed(base_url, ann, order_id)
    try:
        snapshot = await client.next("snapshot")
        assert snapshot["order_id"] == order_id and snapshot["me"]["state"] == "joined_waiting"
        assert snapshot["gift"]["joined_count"] == 1 and snapshot["gift"]["status"] == "open"
        assert "seed" not in snapshot["gift"] and "claimants" not in snapshot["gift"]
        await api.join(bob, order_id)  # the last seat: the draw runs in the background
        opened = await client.next("opened")
        assert opened["gift"]["status"] == "finished" and opened["version"] > snapshot["version"]
        assert opened["me"]["state"] in ("won", "lost")
        _, http = await api.gift(ann, order_id)
        assert opened["me"]["state"] == http["me"]["state"] and opened["gift"]["version"] == http["gift"]["version"]
        if opened["me"]["state"] == "won":
            assert opened["me"]["item"]["name"] == "保温杯"
        versions = [f["version"] for f in client.received if f["type"] != "error"]
        assert versions == sorted(versions)  # never anything older
    finally:
        client.close()


@pytest.mark.gen_test(timeout=60)
async def test_each_member_gets_their_own_outcome_and_watchers_see_progress(api, base_url):
    order_id = await api.create_gift(method="timed", open_at=later(3600), sender_openid="o_owner",
                                     items=[{"name": "A"}])
    owner = await api.login("owner")
    keys = [await api.login(f"m{i}") for i in range(4)]
    onlooker = await api.login("onlooker")
    for key in keys[:2]:
        await api.join(key, order_id)
    clients = [await subscribed(base_url, key, order_id) for key in [owner, onlooker, *keys]]
    try:
        for client in clients:
            await client.next("snapshot")
        for key in keys[2:]:
            await api.join(key, order_id)
        progress = await clients[1].next("progress")
        assert progress["order_id"] == order_id and progress["joined_count"] in (3, 4)
        assert set(progress) >= {"version", "joined_count", "open_number", "status"}
        status, _ = await api.request("POST", f"/api/v1/gifts/{order_id}/open", {}, token=owner)
        assert status == 200
        opened = [await client.next("opened") for client in clients]
        states = [o["me"]["state"] for o in opened]
        assert states[0] == "own_gift" and states[1] == "closed"
        assert sorted(states[2:]) == ["lost", "lost", "lost", "won"]
        assert len({o["version"] for o in opened}) == 1
    finally:
        for client in clients:
            client.close()


@pytest.mark.gen_test(timeout=60)
async def test_subscribing_after_the_draw_gives_the_result_in_the_snapshot(api, base_url):
    order_id = await api.create_gift(method="full", open_number=1)
    key = await api.login("late")
    await api.join(key, order_id)
    async def finished() -> bool:
        return (await api.gift(key, order_id))[1]["gift"]["status"] == "finished"
    await until(finished)
    client = await subscribed(base_url, key, order_id)  # half an hour later, say
    try:
        snapshot = await client.next("snapshot", "opened")
        assert snapshot["type"] == "snapshot"
        assert snapshot["gift"]["status"] == "finished" and snapshot["me"]["state"] == "won"
    finally:
        client.close()


@pytest.mark.gen_test(timeout=60)
async def test_the_joiner_of_a_direct_gifts_last_item_sees_it_won_though_its_record_lands_late(
        api, base_url, monkeypatch):
    # The last item's claim finishes the gift; the join record is the next write. Hold that
    # write back, so the result goes out before the record exists.
    original = join_store.insert_many

    async def late(db, records):
        await asyncio.sleep(0.5)
        return await original(db, records)
    monkeypatch.setattr(join_store, "insert_many", late)
    order_id = await api.create_gift(method="direct", items=[{"name": "红包"}])
    ann = await api.login("ann")
    client = await subscribed(base_url, ann, order_id)
    assert (await client.next("snapshot"))["me"]["state"] == "can_join"
    status, joined = await api.join(ann, order_id)
    assert status == 200 and joined["me"]["state"] == "won"
    frame = await client.next("opened", "snapshot")
    assert frame["me"]["state"] == "won" and frame["me"]["item"]["name"] == "红包"
    client.close()


@pytest.mark.gen_test(timeout=60)
async def test_resubscribing_with_an_old_version_gets_what_was_missed_and_a_current_one_nothing(api, base_url):
    order_id = await api.create_gift(method="timed", open_at=later(3600), sender_openid="o_owner")
    owner, key = await api.login("owner"), await api.login("back")
    await api.join(key, order_id)
    first = await subscribed(base_url, key, order_id)
    seen = (await first.next("snapshot"))["version"]
    first.close()  # the mini-program goes to the background
    await api.request("POST", f"/api/v1/gifts/{order_id}/open", {}, token=owner)
    current = (await api.gift(key, order_id))[1]["gift"]["version"]
    back = await subscribed(base_url, key, order_id, version=seen)
    up_to_date = await subscribed(base_url, key, order_id, version=current)
    try:
        missed = await back.next()
        assert missed["type"] == "opened" and missed["version"] == current
        assert missed["me"]["state"] == "won"
        up_to_date.send({"type": "ping"})
        assert (await up_to_date.next())["type"] == "pong"  # nothing older or equal came first
    finally:
        back.close()
        up_to_date.close()


@pytest.mark.gen_test(timeout=90)
async def test_connections_dropped_at_random_during_a_draw_all_end_with_the_result(api, base_url):
    members = 30
    order_id = await api.create_gift(method="timed", open_at=later(3600), sender_openid="o_owner",
                                     items=[{"name": f"item{i}"} for i in range(5)])
    owner = await api.login("owner")
    keys = [await api.login(f"r{i}") for i in range(members)]
    for key in keys:
        assert (await api.join(key, order_id))[0] == 200
    clients = [await subscribed(base_url, key, order_id) for key in keys]
    versions = [(await c.next("snapshot"))["version"] for c in clients]
    rng = random.Random(4)
    final: dict[int, dict] = {}

    async def member(i: int) -> None:
        # Drop the connection at a random moment around the draw, come back after a while with
        # the version this page has, and keep going until the result is in.
        client = clients[i]
        if rng.random() < 0.6:
            await asyncio.sleep(rng.random() * 0.3)
            client.close()
            await asyncio.sleep(rng.random() * 0.5)
            client = clients[i] = await subscribed(base_url, keys[i], order_id, version=versions[i])
        while True:
            frame = await client.next("snapshot", "opened", "progress")
            versions[i] = frame["version"]
            if frame["type"] != "progress" and frame["gift"]["status"] == "finished":
                final[i] = frame
                return

    async def draw() -> None:
        await asyncio.sleep(0.15)
        status, _ = await api.request("POST", f"/api/v1/gifts/{order_id}/open", {}, token=owner)
        assert status == 200

    try:
        await asyncio.gather(draw(), *(member(i) for i in range(members)))
    finally:
        for client in clients:
            client.close()
    assert len(final) == members  # zero misses
    states = sorted(f["me"]["state"] for f in final.values())
    assert states == ["lost"] * (members - 5) + ["won"] * 5
    assert {f["me"].get("item", {}).get("name") for f in final.values() if f["me"]["state"] == "won"} == {
        f"item{i}" for i in range(5)}


@pytest.mark.gen_test(timeout=120)
async def test_a_draw_committed_by_another_process_reaches_a_client_of_this_one(
        api, base_url, db, engine_uri, db_name, wechat_fake):
    order_id = await api.create_gift(method="timed", open_at=later(3600), items=[{"name": "A"}])
    key = await api.login("far")
    await api.join(key, order_id)
    client = await subscribed(base_url, key, order_id)
    # This process runs no scheduler: only the other one can open the gift.
    scheduler = ServerProcess(uri_with_db(engine_uri, db_name), wechat_fake.url, "--role=scheduler",
                              "--sweep_seconds=0.2", "--leader_lease_seconds=2").start()
    try:
        assert (await client.next("snapshot"))["gift"]["status"] == "open"
        await make_due(db, order_id)  # once the other process runs, however long it took to start
        opened = await client.next("opened", timeout=60)
        assert opened["gift"]["status"] == "finished" and opened["me"]["state"] == "won"
    finally:
        client.close()
        scheduler.stop()
    assert "opened" in scheduler.log_text()


@pytest.mark.parametrize("app", ["polling"], indirect=True)
@pytest.mark.gen_test(timeout=60)
async def test_without_change_streams_a_poll_delivers_the_result_and_says_so(
        api, base_url, hub, monkeypatch, caplog):
    async def standalone(*args, **kwargs):
        raise OperationFailure("The $changeStream stage is only supported on replica sets", 40573)

    monkeypatch.setattr(gift_store, "watch", standalone)
    hub.feed.mode = "change_stream"  # as on a standalone mongod: the stream is tried, then the poll
    order_id = await api.create_gift(method="full", open_number=2)
    ann, bob = await api.login("ann"), await api.login("bob")
    await api.join(ann, order_id)
    with caplog.at_level(logging.WARNING, logger="lottery.live"):
        client = await subscribed(base_url, ann, order_id)
        try:
            await client.next("snapshot")
            await api.join(bob, order_id)
            opened = await client.next("opened")
            assert opened["gift"]["status"] == "finished"
        finally:
            client.close()
    assert hub.mode == "polling"
    assert any("falls back to polling" in r.getMessage() for r in caplog.records)


@pytest.mark.gen_test(timeout=60)
async def test_a_lost_change_stream_is_resumed_and_nothing_is_missed(api, base_url, hub, monkeypatch):
    real_watch = gift_store.watch
    opened_streams = []

    async def flaky(db, resume_after, **kwargs):
        stream = await real_watch(db, resume_after, **kwargs)
        opened_streams.append(resume_after)
        if len(opened_streams) == 1:
            await stream.close()  # the first stream dies at once: the next try_next fails
        return stream

    monkeypatch.setattr(gift_store, "watch", flaky)
    hub.feed.retry_delay = 0.1
    order_id = await api.create_gift(method="full", open_number=2)
    ann, bob = await api.login("ann"), await api.login("bob")
    await api.join(ann, order_id)
    client = await subscribed(base_url, ann, order_id)
    try:
        await client.next("snapshot")
        await api.join(bob, order_id)
        assert (await client.next("opened"))["gift"]["status"] == "finished"
    finally:
        client.close()
    assert len(opened_streams) >= 2


@pytest.mark.gen_test(timeout=30)
async def test_an_unknown_login_key_closes_with_4401(http_server, base_url):
    by_query = await WsClient.connect(base_url, "not-a-key")
    error = await by_query.next("error")
    assert error["code"] == "login_expired" and error["message"] == "login_key已过期"
    assert await by_query.closed() == CLOSE_BAD_KEY
    by_message = await WsClient.connect(base_url)
    by_message.send({"type": "auth", "login_key": {"$ne": None}})
    assert (await by_message.next("error"))["code"] == "login_expired"
    assert await by_message.closed() == CLOSE_BAD_KEY


@pytest.mark.gen_test(timeout=30)
async def test_auth_by_message_then_subscribe(api, base_url):
    order_id = await api.create_gift(method="direct")
    key = await api.login("msg")
    client = await WsClient.connect(base_url)
    try:
        client.send({"type": "subscribe", "order_id": order_id})
        assert (await client.next("error"))["code"] == "not_authenticated"
        client.send({"type": "auth", "login_key": key})
        client.send({"type": "subscribe", "order_id": order_id})
        snapshot = await client.next("snapshot")
        assert snapshot["me"] == {"state": "can_join"}
    finally:
        client.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_connection_that_never_authenticates_is_closed_with_4408(app, http_server, base_url):
    app.settings["realtime"].auth_timeout = 0.3
    silent = await WsClient.connect(base_url)
    assert await silent.closed() == CLOSE_AUTH_TIMEOUT


@pytest.mark.gen_test(timeout=30)
async def test_a_gift_the_server_cannot_read_closes_its_watchers_with_1011_and_spares_the_others(api, db, base_url):
    broken, sound = await api.create_gift(method="full", open_number=3), await api.create_gift(method="full", open_number=3)
    await db.gifts.update_one({"_id": broken}, {"$unset": {"status": ""}})  # a document no release wrote
    key = await api.login("watcher")
    client = await WsClient.connect(base_url, key)
    other = await subscribed(base_url, key, sound)
    try:
        client.send({"type": "subscribe", "order_id": broken})
        assert await client.closed() == 1011
        other.send({"type": "ping"})
        assert (await other.next("pong"))["type"] == "pong"  # the other gift's watcher is untouched
    finally:
        client.close()
        other.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_second_identity_on_one_connection_is_refused_and_the_first_kept(api, base_url):
    order_id = await api.create_gift(method="full", open_number=3)
    first, second = await api.login("first"), await api.login("second")
    await api.join(first, order_id)
    client = await WsClient.connect(base_url, first)
    try:
        client.send({"type": "auth", "login_key": second})
        assert (await client.next("error"))["code"] == "already_authenticated"
        client.send({"type": "subscribe", "order_id": order_id})
        assert (await client.next("snapshot"))["me"]["state"] == "joined_waiting"  # still the first
    finally:
        client.close()


@pytest.mark.gen_test(timeout=30)
async def test_malformed_and_unknown_frames_get_errors_and_the_connection_stays(api, base_url):
    key = await api.login("sloppy")
    client = await WsClient.connect(base_url, key)
    try:
        for frame, code in [("not json", "bad_message"), ("[1, 2]", "bad_message"), ({"no": "type"}, "bad_message"),
                            ({"type": "dance"}, "unknown_type"), (b"\x00\x01", "bad_message"),
                            ({"type": "subscribe"}, "missing_params"),
                            ({"type": "subscribe", "order_id": {"$ne": None}}, "invalid_input"),
                            ({"type": "subscribe", "order_id": "../../x"}, "invalid_input"),
                            ({"type": "subscribe", "order_id": "abc", "version": "7"}, "invalid_input"),
                            ({"type": "subscribe", "order_id": "0123456789abcdef01234567"}, "gift_not_found")]:
            client.send(frame)
            error = await client.next()
            assert error["type"] == "error" and error["code"] == code, (frame, error)
            assert error["message"]
        client.send({"type": "ping"})
        assert (await client.next())["type"] == "pong"
    finally:
        client.close()


@pytest.mark.gen_test(timeout=60)
async def test_subscriptions_per_connection_are_capped(api, base_url, app):
    app.settings["realtime"].max_subscriptions = 2
    order_ids = [await api.create_gift(method="direct") for _ in range(3)]
    client = await WsClient.connect(base_url, await api.login("greedy"))
    try:
        for order_id in order_ids[:2]:
            client.send({"type": "subscribe", "order_id": order_id})
            await client.next("snapshot")
        client.send({"type": "subscribe", "order_id": order_ids[2]})
        error = await client.next("error")
        assert error["code"] == "too_many_subscriptions" and error["order_id"] == order_ids[2]
        client.send({"type": "subscribe", "order_id": order_ids[0]})  # again: a resync, not a new one
        assert (await client.next("snapshot", "error"))["order_id"] == order_ids[0]
        client.send({"type": "unsubscribe", "order_id": order_ids[1]})
        client.send({"type": "subscribe", "order_id": order_ids[2]})
        assert (await client.next("snapshot", "error"))["order_id"] == order_ids[2]
    finally:
        client.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_client_flooding_frames_is_closed_and_a_normal_one_is_not(api, base_url, app):
    app.settings["realtime"].message_burst = 20
    calm = await WsClient.connect(base_url, await api.login("calm"))
    flood = await WsClient.connect(base_url, await api.login("flood"))
    try:
        for _ in range(10):
            calm.send({"type": "ping"})
            assert (await calm.next("pong"))["type"] == "pong"
        for _ in range(100):
            flood.send({"type": "ping"})
        assert await flood.closed() == CLOSE_FLOOD
        calm.send({"type": "ping"})
        assert (await calm.next("pong"))["type"] == "pong"
    finally:
        calm.close()
        flood.close()


@pytest.mark.gen_test(timeout=30)
async def test_an_oversized_frame_closes_with_1009(api, base_url):
    client = await WsClient.connect(base_url, await api.login("big"))
    client.send({"type": "ping", "padding": "x" * 10000})
    assert await client.closed() == 1009


@pytest.mark.gen_test(timeout=30)
async def test_a_client_whose_backlog_passes_the_cap_is_cut_and_comes_back(api, base_url, app):
    order_id = await api.create_gift(method="direct", wish="很" * 100)
    key = await api.login("laggard")
    app.settings["realtime"].max_pending_bytes = 200  # less than one snapshot
    drops = REGISTRY.get_sample_value("gift_lottery_ws_send_buffer_drops_total") or 0
    client = await subscribed(base_url, key, order_id)
    assert await client.closed() == CLOSE_BACKLOG
    assert REGISTRY.get_sample_value("gift_lottery_ws_send_buffer_drops_total") == drops + 1
    app.settings["realtime"].max_pending_bytes = 1024 * 1024
    again = await subscribed(base_url, key, order_id)
    try:
        assert (await again.next("snapshot"))["order_id"] == order_id
    finally:
        again.close()


@pytest.mark.gen_test(timeout=30)
async def test_an_open_socket_gives_back_the_memory_of_its_upgrade_headers_and_empty_write_queues_and_still_answers(api, base_url, hub):
    key = await api.login("headers")
    client = await WsClient.connect(base_url, key, headers={f"X-Filler-{i}": "x" * 40 for i in range(12)})
    client.send({"type": "ping"})
    assert (await client.next())["type"] == "pong"
    [handler] = list(hub.connections)
    empty = sys.getsizeof({})
    for headers in (handler.request.headers, handler._headers):  # the request's and the answer's
        assert len(headers) == 0
        assert [sys.getsizeof(table) for table in vars(headers).values() if isinstance(table, dict)] == [empty] * 2
    assert handler.ui is None  # nor the template namespaces a websocket never renders with
    # The stream's write queues, empty while frames go straight to the socket, hold no block.
    stream = handler.ws_connection.stream
    assert sys.getsizeof(stream._write_futures) + sys.getsizeof(stream._write_buffer._buffers) < 200
    client.close()


@pytest.mark.gen_test(timeout=30)
async def test_foreign_browser_origins_are_refused_unless_allowed(api, base_url, app):
    key = await api.login("origin")
    with pytest.raises(HTTPClientError) as refused:
        await WsClient.connect(base_url, key, headers={"Origin": "https://evil.example"})
    assert refused.value.code == 403
    same = await WsClient.connect(base_url, key, headers={"Origin": base_url})
    app.settings["realtime"].allowed_origins = ["https://pages.example"]
    allowed = await WsClient.connect(base_url, key, headers={"Origin": "https://pages.example"})
    for client in (same, allowed):
        client.send({"type": "ping"})
        assert (await client.next())["type"] == "pong"
        client.close()


@pytest.mark.gen_test(timeout=30)
async def test_closed_connections_leave_the_hub(api, base_url, hub):
    order_id = await api.create_gift(method="direct")
    clients = [await subscribed(base_url, await api.login(f"c{i}"), order_id) for i in range(3)]
    for client in clients:
        await client.next("snapshot")
    assert hub.subscription_count() == 3
    for client in clients:
        client.close()
    await until(lambda: not hub.connections and not hub.gifts)


@pytest.mark.gen_test(timeout=30)
async def test_no_log_line_ever_holds_a_login_key(api, base_url, app, caplog, monkeypatch):
    key = await api.login("secretive")
    order_id = await api.create_gift(method="direct")

    async def broken(frame):
        raise RuntimeError("boom")

    with caplog.at_level(logging.DEBUG):
        client = await WsClient.connect(base_url, key)
        client.send({"type": "subscribe", "order_id": order_id})
        await client.next("snapshot")
        from handlers.realtime import RealtimeHandler
        monkeypatch.setattr(RealtimeHandler, "on_ping", lambda self, frame: broken(frame))
        client.send({"type": "ping"})  # an unexpected server error closes the connection
        await client.closed()
        bad = await WsClient.connect(base_url, "wrong-" + key)
        await bad.closed()
    assert any("uncaught exception on GET /ws" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if key in r.getMessage() or key in str(r.exc_text or "")]


@pytest.mark.gen_test(timeout=120)
async def test_a_web_process_pushes_a_draw_made_by_a_join_in_another_process(
        api, engine_uri, db_name, wechat_fake):
    web = ServerProcess(uri_with_db(engine_uri, db_name), wechat_fake.url, "--role=web").start()
    try:
        order_id = await api.create_gift(method="full", open_number=2)
        ann, bob = await api.login("ann"), await api.login("bob")
        await api.join(ann, order_id)
        client = await subscribed(web.base_url, ann, order_id)
        try:
            assert (await client.next("snapshot"))["me"]["state"] == "joined_waiting"
            await api.join(bob, order_id)  # the last seat, taken (and drawn) in this process
            opened = await client.next("opened", timeout=60)
            assert opened["gift"]["status"] == "finished"
            assert opened["me"]["state"] == (await api.gift(ann, order_id))[1]["me"]["state"]
        finally:
            client.close()
    finally:
        web.stop()
    assert ann not in web.log_text()  # the key came in the URL; no log line holds it


@pytest.mark.gen_test(timeout=60)
async def test_a_post_to_ws_gets_405_at_once_and_fifty_leave_no_connection_open_and_no_error(
        http_server, base_url, caplog):
    caplog.set_level(logging.WARNING)
    answers = await asyncio.gather(*(exchange(base_url, request_bytes("POST", f"/ws?n={i}", body=b"{}"), timeout=10)
                                     for i in range(50)))  # each read until the server closed it
    assert [status_of(answer) for answer in answers] == [405] * 50
    await until(lambda: open_connections(where(base_url)[1]) == 0)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.gen_test(timeout=60)
async def test_every_other_method_on_ws_is_a_405_too(http_server, base_url, caplog):
    for method in ("OPTIONS", "PUT", "PATCH", "DELETE", "HEAD"):
        answer = await exchange(base_url, request_bytes(method, "/ws"), timeout=10)
        assert status_of(answer) == 405, (method, answer[:100])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.gen_test(timeout=60)
async def test_a_deeply_nested_frame_gets_an_error_frame_and_the_connection_stays(api, base_url, caplog):
    key = await api.login("nester")
    client = await WsClient.connect(base_url, key)
    try:
        for frame in ("[" * 2000 + "]" * 2000, '{"type": "ping", "x": ' + "[" * 40 + "]" * 40 + "}"):
            client.send(frame)
            error = await client.next("error")
            assert error["code"] == "bad_message" and "嵌套过深" in error["message"]
        client.send({"type": "ping"})
        assert (await client.next("pong"))["type"] == "pong"
    finally:
        client.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.gen_test(timeout=60)
async def test_the_frozen_list_and_its_beacon_round_reach_waiting_pages_before_the_result(
        api, base_url, beacon_fake):
    order_id = await api.create_gift(method="full", open_number=2, items=[{"name": "保温杯"}])
    ann, bob = await api.login("ann"), await api.login("bob")
    await api.join(ann, order_id)
    client = await subscribed(base_url, ann, order_id)
    for relay in range(len(beacon_fake.faults)):  # the round will be late: the draw waits for it
        beacon_fake.set_fault(relay, "down")
    try:
        await client.next("snapshot")
        await api.join(bob, order_id)
        frame = await client.next("progress")
        while "freeze" not in frame:
            frame = await client.next("progress")
        freeze = frame["freeze"]
        assert frame["status"] == "drawing" and freeze["participant_count"] == 2
        frozen_at = datetime.fromisoformat(freeze["frozen_at"].replace("Z", "+00:00")).timestamp()
        assert beacon_fake.chain.round_time(freeze["beacon_round"]) > frozen_at
    finally:
        for relay in range(len(beacon_fake.faults)):
            beacon_fake.set_fault(relay, None)
    try:
        opened = await client.next("opened")
        assert opened["gift"]["freeze"] == freeze
        status, proof = await api.request("GET", f"/api/v1/gifts/{order_id}/proof")
        assert proof["participants_hash"] == freeze["participants_hash"]
        assert proof["beacon"]["round"] == freeze["beacon_round"]
    finally:
        client.close()
