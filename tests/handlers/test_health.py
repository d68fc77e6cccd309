"""When the database goes away: /healthz (the process answers, never waiting on the database)
says so once the driver notices, /readyz turns 503 with the reason, errors are never cached,
and a websocket that cannot authenticate is closed with 1013 (try again later) rather than left
hanging."""
import json
import os
import signal

import pytest

from lottery.storage.connection import ensure_indexes
from tests.api import key_issued_elsewhere
from tests.conftest import client_on
from lottery.storage.engine import EmbeddedEngine
from tests.waiting import until
from tests.ws import WsClient


@pytest.fixture
def engine():
    """A private engine, so that a test may stop it."""
    own = EmbeddedEngine(":memory:")
    own.start()
    yield own
    own.stop()


@pytest.fixture
def app(engine, build_app, io_loop):
    """The app over the private engine."""
    client = client_on(io_loop, engine.uri, server_selection_ms=500)
    db = client["health"]
    io_loop.run_sync(lambda: ensure_indexes(db))
    yield build_app(db, request_timeout=2.5)  # production's budget: these tests are about the answers of an outage
    io_loop.run_sync(client.close)


@pytest.mark.gen_test(timeout=60)
async def test_healthz_says_whether_the_database_answers_and_readyz_turns_503_once_it_is_gone(api, engine):
    assert await api.request("GET", "/healthz") == (200, {"status": "ok", "database": "ok"})
    assert await api.request("GET", "/readyz") == (200, {"status": "ready", "database": "ok"})
    engine.stop()

    async def healthz_says_unreachable() -> bool:
        return await api.request("GET", "/healthz") == (200, {"status": "ok", "database": "unreachable"})

    await until(healthz_says_unreachable)  # no round trip: it tells once the driver's monitor has noticed
    assert await api.request("GET", "/readyz") == (503, {"status": "not ready", "database": "unreachable",
                                                        "reasons": ["database unreachable"]})


@pytest.mark.gen_test(timeout=60)
async def test_healthz_never_touches_the_database_so_a_hung_one_cannot_make_the_process_look_dead(api, engine):
    assert (await api.request("GET", "/readyz"))[0] == 200  # connected, its server known to be up
    os.kill(engine.pid, signal.SIGSTOP)  # hung: it accepts connections and answers nothing
    try:
        # A round trip to the hung database would outlast the request's own timeout.
        response = await api.http.fetch(api.base_url + "/healthz", request_timeout=3)
        assert response.code == 200 and json.loads(response.body)["status"] == "ok"
    finally:
        os.kill(engine.pid, signal.SIGCONT)


@pytest.mark.gen_test(timeout=60)
async def test_a_catalogue_answer_while_the_database_is_away_is_never_cached(api, engine):
    response = await api.http.fetch(api.base_url + "/api/v1/products")
    assert response.headers["Cache-Control"] == "public, max-age=60"
    engine.stop()
    response = await api.http.fetch(api.base_url + "/api/v1/products", raise_error=False)
    assert response.code == 503 and json.loads(response.body)["error"]["code"] == "database_unavailable"
    assert response.headers["Cache-Control"] == "no-store"
    response = await api.http.fetch(api.base_url + "/api/indexlist/categoryList", method="POST", body=b"{}")
    assert json.loads(response.body)["code"] == "error"  # the seed's envelope
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.gen_test(timeout=60)
async def test_a_websocket_that_cannot_authenticate_for_want_of_a_database_is_closed_with_1013(
        api, app, base_url, engine):
    key = await key_issued_elsewhere(app.settings["db"], "stranded")
    client = await WsClient.connect(base_url)
    engine.stop()
    client.send({"type": "auth", "login_key": key})
    assert await client.closed() == 1013
