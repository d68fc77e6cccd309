"""Shared fixtures: one embedded engine per test session, a database per test, the domain's
services over it, the real app on a real socket served as production serves it, and the local
WeChat fake."""
import os
import tempfile
import uuid

import pytest

from lottery.accounts import Accounts
from lottery.draw import Draws
from lottery.gifts import Gifts
from lottery.storage.connection import client_for, ensure_indexes
from lottery.storage.engine import EmbeddedEngine
from wechat.client import WeChatClient
from wechatpay.client import WeChatPayClient
from fakes.wechatpay import FakeWeChatPay
from config import Config
from server import http_server as production_http_server, make_app
from services import build_services
from tests import beacons
from tests.api import ADMIN_TOKEN, Api
from tests.servers import TEST_REQUEST_TIMEOUT
from fakes.wechat import APPID, SECRET, FakeWeChat
from tests.query_guard import QueryGuard, index_specs


# The console's uploads in tests: out of the working tree.
TEST_MEDIA = os.path.join(tempfile.gettempdir(), "gift-lottery-test-media")


@pytest.fixture(scope="session", autouse=True)
def beacon_fake():
    """The local drand stand-in (tests/beacons.py), for the whole test process."""
    fake = beacons.start_fake()
    beacons.start_receipt_key()
    yield fake
    fake.stop()


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


def client_on(io_loop, uri: str, **options):
    """A client made on the test's loop (PyMongo starts its monitoring tasks on the running
    loop when it is made)."""
    async def make():
        return client_for(uri, **options)
    return io_loop.run_sync(make)


@pytest.fixture
def db(engine_uri, db_name, io_loop):
    """A fresh database with indexes, dropped afterwards. The project's own queries on it are
    checked by the query guard: one that would scan a collection fails the test."""
    guard = QueryGuard({})
    client = client_on(io_loop, engine_uri, event_listeners=[guard])
    database = client[db_name]
    io_loop.run_sync(lambda: ensure_indexes(database))
    guard.indexes = io_loop.run_sync(lambda: index_specs(database))
    yield database
    io_loop.run_sync(lambda: client.drop_database(db_name))
    io_loop.run_sync(client.close)
    if guard.violations:
        pytest.fail("queries the embedded engine serves by scanning a collection:\n"
                    + "\n".join(sorted(set(guard.violations))), pytrace=False)


@pytest.fixture
def gifts(db) -> Gifts:
    """The gift service without WeChat (members are made with `accounts.ensure_member`)."""
    return Gifts(db, Accounts(db, None), beacons.receipt_key())


@pytest.fixture
def drawer(db, io_loop):
    """`drawer(**kwargs)` makes a Draws (or, with `stall=`, one of tests/stalling.py's); their
    background work ends with the test."""
    from tests.stalling import stalling_draws

    made: list[Draws] = []

    def make(stall: str | None = None, beacon=None, **kwargs) -> Draws:
        made.append((stalling_draws(stall) if stall else Draws)(db, beacon or beacons.beacon(), beacons.receipt_key(), **kwargs))
        return made[-1]

    yield make
    for draws in made:
        io_loop.run_sync(lambda: draws.idle(timeout=5))


@pytest.fixture
def wechat_fake():
    fake = FakeWeChat().start()
    yield fake
    fake.stop()


@pytest.fixture
def wechat(wechat_fake) -> WeChatClient:
    # Generous: on a loaded CI machine even resolving 127.0.0.1 in Tornado's resolver thread has
    # taken over 2 s; tests of timeouts set their own.
    return WeChatClient(APPID, SECRET, wechat_fake.url, timeout=10.0)


@pytest.fixture
def pay_fake():
    """The local WeChat Pay (fakes/wechatpay.py), for the mini-program of the WeChat fake."""
    fake = FakeWeChatPay(appid=APPID).start()
    yield fake
    fake.stop()


@pytest.fixture
def payments(pay_fake, base_url) -> WeChatPayClient:
    """A WeChat Pay client of the fake, whose notifies reach the app under test."""
    return WeChatPayClient(pay_fake.client_config(f"{base_url}/api/payment/wechat/notify",
                                                  f"{base_url}/api/payment/wechat/refund-notify"), timeout=5)


def test_config(**settings) -> Config:
    """A web-role configuration for an app under test: `settings` are Config fields, and
    `allowed_hosts` (a list) and `images` (an ImageSources) as a test has them at hand."""
    settings = {name: value for name, value in settings.items() if value is not None}
    if isinstance(settings.get("allowed_hosts"), list):
        settings["allowed_hosts"] = ",".join(settings["allowed_hosts"])
    if "images" in settings:
        settings["image_hosts"] = ",".join(settings.pop("images").hosts)
    return Config(**{"admin_token": ADMIN_TOKEN, "role": "web", "request_timeout": float(TEST_REQUEST_TIMEOUT),
                     "media_dir": TEST_MEDIA, **beacons.settings(), **settings})


@pytest.fixture
def build_app(db, wechat, io_loop):
    """`build_app(database?, payments=?, hub=?, **Config fields)`: the app over services built as
    server.py builds them; each shuts down at the end as server.py does on SIGTERM: background
    draw work, then the realtime hub and its websockets."""
    built = []

    def build(database=None, payments=None, hub=None, **settings):
        config = test_config(**settings)
        services = build_services(config, database if database is not None else db, wechat=wechat,
                                  payments=payments, hub=hub)
        built.append(make_app(services, config))
        return built[-1]

    yield build
    for application in built:
        io_loop.run_sync(lambda: application.settings["draws"].idle(timeout=10))
        io_loop.run_sync(application.settings["hub"].stop)


@pytest.fixture
def app(build_app):
    return build_app()


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
    client = Api(base_url)
    yield client
    client.close()
