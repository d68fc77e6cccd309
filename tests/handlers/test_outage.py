"""Losing the database mid-storm: the embedded engine is killed (and kept from coming back for a
while) under joins, a waiting full gift, a timed gift and a notification drain. Meanwhile routes
answer at once and clearly (v1: 503 with Retry-After; the seed's routes: their envelope), /healthz
says why and /readyz is 503, websockets are closed with 1013; the server restarts its engine,
and everything carries on by itself: every acknowledged join kept, no item given twice, each
gift opened once, each message sent once, the waiting page gets its result. A shutdown with the
database gone ends within its timeout."""
import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest
from pymongo import AsyncMongoClient

from lottery.storage.data_dir_lock import DataDirLock
from lottery.storage.engine import engine_uri
from tests.api import Api
from tests.notify.support import CONFIG_JSON
from tests.servers import ServerProcess, write_journaled
from tests.waiting import until
from tests.ws import WsClient

SUBSCRIBED = {"subscribed": ["tpl_won", "tpl_lost", "tpl_received"]}
UNAVAILABLE = "服务暂时不可用，请稍后再试"


def embedded(tmp_path, wechat_url: str, *args: str) -> ServerProcess:
    """server.py on its own embedded engine, supervised."""
    server = ServerProcess("", wechat_url, f"--data_dir={tmp_path / 'data'}", "--sweep_seconds=0.2",
                           "--notify_backoff_seconds=0.2", "--notify_rate=500", *args)
    server.env["NOTIFY_TEMPLATES"] = CONFIG_JSON
    server.env["REQUEST_TIMEOUT"] = "2.5"  # production's budget: this test is about the answers of an outage
    return server


class Member:
    """A mini-program user who joins and, told to try again later, does."""

    def __init__(self, api: Api, key: str) -> None:
        self.api, self.key = api, key
        self.refused_for_outage = 0

    async def join(self, order_id: str) -> str:
        """How the join ended: "joined", or the refusal's code ("already_joined" when an attempt
        cut short by the outage had taken the seat, "full", "no_items_left")."""
        while True:
            response = await self.api.http.fetch(
                f"{self.api.base_url}/api/v1/gifts/{order_id}/join", method="POST", body=json.dumps(SUBSCRIBED),
                headers={"Authorization": f"Bearer {self.key}"}, raise_error=False, request_timeout=60)
            if response.code == 200:
                return "joined"
            if response.code != 503:
                return json.loads(response.body)["error"]["code"]
            assert response.headers["Retry-After"] == "2"
            # Refused before anything was written, or cut after the join's write was sent (its
            # outcome unknown): either way trying again is safe.
            assert json.loads(response.body)["error"]["code"] in ("database_unavailable", "join_outcome_unknown")
            self.refused_for_outage += 1
            await asyncio.sleep(0.3)


async def follow(base_url: str, key: str, order_id: str) -> list[int]:
    """A waiting page: follows the gift until its result, reconnecting (with the version it has)
    whenever the server closes; returns the close codes it saw."""
    codes, version = [], None
    while True:
        try:
            client = await WsClient.connect(base_url, key)
        except Exception:  # noqa: BLE001 - the page retries whatever went wrong
            await asyncio.sleep(0.3)
            continue
        client.send({"type": "subscribe", "order_id": order_id, **({"version": version} if version else {})})
        try:
            while True:
                frame = await client.next("snapshot", "opened", timeout=60)
                version = frame["version"]
                if frame["gift"]["status"] == "finished":
                    client.close()
                    return codes
        except AssertionError:  # closed by the server
            codes.append(client.close_code)
            await asyncio.sleep(0.3)


def our_tracebacks(log: str) -> list[str]:
    """The tracebacks in a server's log that come from the server itself (its engine's own
    output shares the log: its failed starts while the port is held are expected)."""
    blocks = log.split("Traceback (most recent call last):")[1:]
    # The engine writes to the same file as the server, so the server's lines may come between
    # a traceback of the engine's and its frames: look at its first lines, not only the next.
    return [block for block in blocks if "secantus" not in "\n".join(block.split("\n")[:12])]


def hold_port(port: int) -> socket.socket:
    """Take the engine's port, so that its restarts fail until it is let go."""
    while True:
        try:
            return socket.create_server(("127.0.0.1", port))
        except OSError:
            time.sleep(0.05)  # the killed engine's socket is still closing


@pytest.mark.gen_test(timeout=240)
async def test_a_lost_database_mid_storm_is_survived_and_every_rule_still_holds(wechat_fake, tmp_path):
    wechat_fake.one_time = True
    server = embedded(tmp_path, wechat_fake.url).start(timeout=60)
    api = Api(server.base_url)
    record = DataDirLock(str(tmp_path / "data")).read_record()
    held = client = None
    try:
        direct = await api.create_gift(method="direct", items=[{"name": f"券{i}"} for i in range(30)])
        full = await api.create_gift(method="full", open_number=40, items=[{"name": "耳机"}] * 3)
        open_at = (datetime.now(timezone.utc) + timedelta(seconds=15)).isoformat()
        timed = await api.create_gift(method="timed", open_at=open_at, items=[{"name": "月饼"}] * 2)
        keys = [await api.login(f"m{i}") for i in range(50)]
        members = [Member(api, key) for key in keys]
        for member in members[:10]:
            assert await member.join(timed) == "joined"
        early = [await member.join(full) for member in members[:30]]  # ten seats left
        watcher = asyncio.ensure_future(follow(server.base_url, keys[0], full))

        # The storm: everyone at the direct gift; once the database is gone, the last twenty at the
        # full one's last seats too.
        storm = asyncio.gather(*(m.join(direct) for m in members))
        await until(lambda: len(wechat_fake.delivered) >= 5, timeout=60)  # joins and a drain under way
        write_journaled(engine_uri(record["port"]), {"_id": "before the kill"})
        os.kill(record["engine_pid"], signal.SIGKILL)
        held = hold_port(record["port"])
        last_seats = asyncio.gather(*(m.join(full) for m in members[30:]))

        # While it is away: clear, fast answers, and why.
        probe = members[-1]
        async def refused() -> bool:
            return (await api.request("POST", f"/api/v1/gifts/{direct}/join", {}, token=probe.key))[0] == 503
        await until(refused, timeout=30)
        answer = await api.legacy("/api/sharagift/JoinGift", {"login_key": probe.key, "order_id": direct})
        assert answer == {"code": "error", "message": UNAVAILABLE, "data": None}
        # Liveness asks no database: it says what PyMongo's monitor knows, once it has noticed.
        async def monitor_noticed() -> bool:
            return await api.request("GET", "/healthz") == (200, {"status": "ok", "database": "unreachable"})
        await until(monitor_noticed, timeout=30)
        status, ready = await api.request("GET", "/readyz")
        assert status == 503 and "database unreachable" in ready["reasons"]
        await until(lambda: "closing 1 websocket connections (1013)" in server.log_text()
                    or "websocket authentication: database unavailable" in server.log_text(), timeout=30)
        held.close()  # the engine may come back now
        held = None

        results = await storm + await last_seats
        codes = await asyncio.wait_for(watcher, 120)
        assert 1013 in codes  # the waiting page was told to come back, and got its result then
        assert sum(m.refused_for_outage for m in members) > 0  # the storm did meet the outage
        by_gift = {direct: results[:50], full: early + results[50:]}
        assert set(by_gift[direct]) <= {"joined", "already_joined", "no_items_left"}
        assert set(by_gift[full]) <= {"joined", "already_joined", "full"}
        joined = {o: sum(r in ("joined", "already_joined") for r in by_gift[o]) for o in by_gift}
        assert joined == {direct: 30, full: 40}  # every item and seat taken, once

        uri = engine_uri(DataDirLock(str(tmp_path / "data")).read_record()["port"])
        client = AsyncMongoClient(uri, tz_aware=True)
        db = client["gift_lottery"]

        async def all_done() -> bool:
            # What makes entries first (a draw's pages, the direct gift's joins to tell), then the
            # entries: read the other way round, entries made between the reads would be missed.
            opened = await db.gifts.count_documents({"_id": {"$in": [full, timed]}, "status": "finished"})
            expanded = await db.outbox.count_documents({"kind": "gift_opened", "status": "done"})
            paged = await db.outbox.count_documents({"kind": "participants", "status": {"$ne": "done"}})
            untold = await db.joins.count_documents({"notify": "pending"})
            pending = await db.notifications.count_documents({"status": {"$in": ["pending", "sending"]}})
            return opened == 2 and expanded == 2 and paged == 0 and untold == 0 and pending == 0
        await until(all_done, timeout=90)
        gifts = {g["_id"]: g async for g in db.gifts.find({"_id": {"$in": [direct, full, timed]}})}
        # Every join the storm was told of is there, once; no item given twice.
        for order_id in (direct, full):
            gift = gifts[order_id]
            assert len(gift["claimants"]) == len(set(gift["claimants"])) == gift["joined_count"] == joined[order_id]
        assert gifts[direct]["items_left"] == 0 and gifts[direct]["status"] == "finished"
        # Each gift drawn once, by the rules.
        for order_id, winners in ((full, 3), (timed, 2)):
            assert await db.proofs.count_documents({"_id": order_id}) == 1
            assert len(gifts[order_id]["draw"]["winners"]) == winners
            assert server.log_text().count(f"gift {order_id} opened") == 1
        # Each message once: every entry that was sent reached its member, once (a send whose
        # answer could not be recorded is sent again, and refused as WeChat would: 43101).
        attempted = await db.notifications.count_documents({"attempts": {"$gte": 1}})
        assert attempted > 50 and len(wechat_fake.delivered) == attempted
    finally:
        if client is not None:  # (left open, its tasks would be collected in a later test's loop)
            await client.close()
        if held is not None:
            held.close()
        api.close()
        server.stop()
    log = server.log_text()
    assert not our_tracebacks(log)  # expected trouble is a line, not a page
    assert log.count("the database is unreachable") <= 10  # once per loop and incident
    assert log.count("embedded engine back") == 1


@pytest.mark.gen_test(timeout=120)
async def test_a_shutdown_with_the_database_gone_ends_within_its_timeout(wechat_fake, tmp_path):
    server = embedded(tmp_path, wechat_fake.url, "--shutdown_timeout=5").start(timeout=60)
    record = DataDirLock(str(tmp_path / "data")).read_record()
    api = Api(server.base_url)
    try:
        order_id = await api.create_gift(method="direct", items=[{"name": "券"}] * 3)
        assert (await api.join(await api.login("a"), order_id))[0] == 200
        os.kill(record["engine_pid"], signal.SIGKILL)
        held = hold_port(record["port"])  # it cannot come back
        try:
            # Once the server knows its engine is gone: its work under way waits on a database
            # that cannot answer (noticing that takes PyMongo seconds more; the shutdown must not).
            await until(lambda: "exited with" in server.log_text(), timeout=30)
            server.process.send_signal(signal.SIGTERM)
            try:
                server.process.wait(timeout=5 + 10)  # its timeout, and the engine's stop after it
            except subprocess.TimeoutExpired:
                pytest.fail("still running after SIGTERM:\n" + server.log_text()[-3000:])
        finally:
            held.close()
    finally:
        api.close()
        server.kill()
    assert server.process.returncode == 0
    assert "did not finish (TimeoutError)" in server.log_text()  # it did have work the database held up
    assert "shut down" in server.log_text()
