"""A graceful SIGTERM under load: during a join storm, with a draw under way in the process that
is stopped, every request the process took gets its answer (the others are refused at connect
and go to the other process, as a proxy would send them), no join is lost or doubled, and the
other process finishes the draw, once, as soon as the first hands it over."""
import asyncio
import json
import signal

import pytest

from tests import rawhttp
from tests.api import Api
from tests.servers import ServerProcess, uri_with_db
from tests.waiting import until


class Joiner:
    """A member joining through the first process, and the second once the first refuses."""

    def __init__(self, api: Api, key: str, bases: list[str]) -> None:
        self.api, self.key, self.bases = api, key, bases
        self.cut: list[str] = []  # requests that failed other than by a refused connection

    async def join(self, order_id: str) -> str:
        for base in self.bases:
            try:
                response = await self.api.http.fetch(
                    f"{base}/api/v1/gifts/{order_id}/join", method="POST", body="{}", raise_error=False,
                    headers={"Authorization": f"Bearer {self.key}"}, request_timeout=60)
            except ConnectionRefusedError:
                continue  # the first process has stopped listening: the next one
            except Exception as exc:  # noqa: BLE001 - a reset, a cut answer: what must not happen
                self.cut.append(repr(exc))
                return "cut"
            return "joined" if response.code == 200 else json.loads(response.body)["error"]["code"]
        return "refused everywhere"


@pytest.mark.gen_test(timeout=180)
async def test_sigterm_under_a_join_storm_loses_nothing_and_hands_its_draw_to_another_process(
        engine_uri, db, db_name, wechat_fake):
    uri = uri_with_db(engine_uri, db_name)
    # The first process's draws stop before their result (so one is under way at the SIGTERM);
    # the second's lease on a draw lasts long, so only a handover lets it in before that.
    # The rule is "answered, not cut", not how fast: on two cores shared with other test workers
    # a storm's last answers can take longer than production's 15 s of shutdown time.
    first = ServerProcess(uri, wechat_fake.url, "--draw_lease_seconds=60", "--shutdown_timeout=60",
                          stall="before_finish").start()
    second = None
    api = Api(first.base_url)
    try:
        full = await api.create_gift(method="full", open_number=10, items=[{"name": "耳机"}] * 3)
        direct = await api.create_gift(method="direct", items=[{"name": f"券{i}"} for i in range(60)])
        keys = [await api.login(f"m{i}") for i in range(60)]
        for key in keys[:10]:
            assert (await api.join(key, full))[0] == 200  # the last seat: the first process draws it
        await until(lambda: db.gifts.count_documents({"_id": full, "status": "drawing"}), timeout=30)
        second = ServerProcess(uri, wechat_fake.url, "--sweep_seconds=0.2", "--draw_lease_seconds=60").start()
        joiners = [Joiner(api, key, [first.base_url, second.base_url]) for key in keys]

        async def storm(joiner: Joiner) -> list[str]:
            return [await joiner.join(direct), await joiner.join(full)]  # the second is refused: full
        storming = asyncio.gather(*(storm(j) for j in joiners))
        await until(lambda: db.gifts.count_documents({"_id": direct, "joined_count": {"$gte": 10}}), timeout=30)
        first.process.send_signal(signal.SIGTERM)
        results = await storming
        first.process.wait(timeout=90)
        await until(lambda: db.gifts.count_documents({"_id": full, "status": "finished"}), timeout=60)
    finally:
        api.close()
        first.stop()
        if second is not None:
            second.stop()
    assert first.process.returncode == 0
    assert [j.cut for j in joiners if j.cut] == []  # no request cut: answered, or refused at connect
    assert {r[0] for r in results} == {"joined"} and {r[1] for r in results} <= {"full", "already_joined"}
    gift = await db.gifts.find_one({"_id": direct})
    assert gift["joined_count"] == len(set(gift["claimants"])) == 60 == gift["items_total"] - gift["items_left"]
    assert await db.joins.count_documents({"order_id": direct}) == 60
    # The draw the first process had under way: handed over at its shutdown, finished by the
    # second, once.
    assert "draw lease" in first.log_text() and "handed over" in first.log_text()
    assert f"gift {full} opened" not in first.log_text()
    assert second.log_text().count(f"gift {full} opened") == 1
    assert await db.proofs.count_documents({"_id": full}) == 1
    assert len((await db.gifts.find_one({"_id": full}))["draw"]["winners"]) == 3


@pytest.mark.gen_test(timeout=60)
async def test_a_connection_accepted_before_sigterm_gets_its_answer_even_if_its_request_comes_late(
        engine_uri, db_name, wechat_fake):
    server = ServerProcess(uri_with_db(engine_uri, db_name), wechat_fake.url).start()
    try:
        reader, writer = await rawhttp.connect(server.base_url)
        await asyncio.sleep(0.3)  # the server has accepted it (the kernel did at once)
        server.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(2)  # a slow client: well past the shutdown's quiet time
        writer.write(rawhttp.request_bytes("GET", "/healthz"))
        answer = await asyncio.wait_for(reader.read(), 20)
        writer.close()
        server.process.wait(timeout=30)
    finally:
        server.stop()
    assert answer and rawhttp.status_of(answer) == 200
