"""Shared fixtures: one embedded engine per test session, a database per test, the real app
on a real socket (pytest-tornado's `http_server`), and the local WeChat fake."""
import os
import sys
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lottery.storage.connection import client_for, ensure_indexes  # noqa: E402
from lottery.storage.engine import EmbeddedEngine  # noqa: E402
from notify.wechat import WeChatClient  # noqa: E402
from server import http_server as production_http_server, make_app  # noqa: E402
from tests.fakes.wechat import APPID, SECRET, FakeWeChat  # noqa: E402

from tests.api import ADMIN_TOKEN  # noqa: E402


@pytest.fixture(scope="session")
def engine_uri():
    """The embedded engine, in memory, for the whole test session."""
    engine = EmbeddedEngine(":memory:")
    uri = engine.start()
    yield uri
    engine.stop()


@pytest.fixture
def db_name() -> str:
    return "t_" + uuid.uuid4().hex[:16]


@pytest.fixture
def db(engine_uri, db_name, io_loop):
    """A fresh database with indexes, dropped afterwards."""
    client = client_for(engine_uri)
    database = client[db_name]
    io_loop.run_sync(lambda: ensure_indexes(database))
    yield database
    io_loop.run_sync(lambda: client.drop_database(db_name))
    io_loop.run_sync(client.close)


@pytest.fixture
def wechat_fake():
    fake = FakeWeChat().start()
    yield fake
    fake.stop()


@pytest.fixture
def wechat(wechat_fake) -> WeChatClient:
    return WeChatClient(APPID, SECRET, wechat_fake.url, timeout=2.0)


def shut_down(application, io_loop) -> None:
    """Background draw work, the realtime hub's change stream and websockets end before the
    database goes (as server.py does on SIGTERM)."""
    io_loop.run_sync(lambda: application.settings["draws"].idle(timeout=10))
    io_loop.run_sync(application.settings["hub"].stop)


@pytest.fixture
def app(db, wechat, io_loop):
    application = make_app(db, wechat, admin_token=ADMIN_TOKEN)
    yield application
    shut_down(application, io_loop)


@pytest.fixture
def http_server(request, io_loop, _unused_port, app):
    """The app on a real socket, served with production's HTTP server settings (body cap and
    timeouts), so a difference between the two cannot hide a bug."""
    server = production_http_server(app)
    server.add_socket(_unused_port[0])
    yield server
    server.stop()
    io_loop.run_sync(server.close_all_connections, timeout=10)


@pytest.fixture
def api(http_server, base_url):
    """An HTTP client for the app under test, served on a real socket."""
    from tests.api import Api

    client = Api(base_url)
    yield client
    client.close()
