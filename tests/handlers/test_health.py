"""When the database goes away: /healthz (the process answers) says so, /readyz turns 503 with
the reason, and a websocket that cannot authenticate is closed with 1013 (try again later)
rather than left hanging."""
import json

import pytest

from lottery.storage.connection import ensure_indexes
from tests.conftest import client_on
from lottery.storage.engine import EmbeddedEngine
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
    yield build_app(db)
    io_loop.run_sync(client.close)


@pytest.mark.gen_test(timeout=60)
async def test_healthz_says_whether_the_database_answers_and_readyz_turns_503_once_it_is_gone(api, engine):
    assert await api.request("GET", "/healthz") == (200, {"status": "ok", "database": "ok"})
    assert await api.request("GET", "/readyz") == (200, {"status": "ready", "database": "ok"})
    engine.stop()
    assert await api.request("GET", "/healthz") == (200, {"status": "ok", "database": "unreachable"})
    assert await api.request("GET", "/readyz") == (503, {"status": "not ready", "database": "unreachable",
                                                        "reasons": ["database unreachable"]})


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
        api, base_url, engine):
    key = await api.login("stranded")
    client = await WsClient.connect(base_url)
    engine.stop()
    client.send({"type": "auth", "login_key": key})
    assert await client.closed() == 1013
