"""The production layout on loopback, shared by every test in this folder: one database (the
session's embedded engine), three `--role=web` and two `--role=scheduler` processes of
server.py, and a real nginx running deploy/nginx.conf in front of the web processes.

Tests kill and restart parts of it; each test starts with every part running again (processes
keep their ports, so nginx's upstream list stays true)."""
import asyncio
import os
import uuid

import pytest

from lottery.storage.connection import client_for
from tests.api import Api
from tests.conftest import client_on
from tests.deployment import NGINX, Deployment
from fakes.wechat import FakeWeChat
from tests.notify.support import CONFIG_JSON
from tests.servers import uri_with_db


@pytest.fixture(scope="package")
def deploy_db_name() -> str:
    return "deploy_" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="package")
def deploy_wechat():
    """The WeChat fake every server process of the deployment calls (logins, messages)."""
    fake = FakeWeChat().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="package")
def deployment(engine_uri, deploy_db_name, deploy_wechat):
    if not os.path.exists(NGINX):
        pytest.fail(f"{NGINX} is missing: scripts/test.sh installs Debian's nginx")
    # The schedulers send the draw's subscribe messages (tests/notify/support.py's templates).
    running = Deployment(uri_with_db(engine_uri, deploy_db_name), deploy_wechat.url, webs=3, schedulers=2,
                         env={"NOTIFY_TEMPLATES": CONFIG_JSON})
    try:
        yield running.start()
    finally:
        running.stop()
        running.nginx.remove()
        asyncio.run(drop(engine_uri, deploy_db_name))


async def drop(uri: str, name: str) -> None:
    client = client_for(uri)
    await client.drop_database(name)
    await client.close()


@pytest.fixture
def cluster(deployment) -> Deployment:
    """The deployment with every part running (a test before may have killed some)."""
    return deployment.start()


@pytest.fixture
def store(engine_uri, deploy_db_name, io_loop):
    """The deployment's database, for checks the API does not show."""
    client = client_on(io_loop, engine_uri)
    yield client[deploy_db_name]
    io_loop.run_sync(client.close)


@pytest.fixture
def api(cluster, io_loop):
    """An HTTP client that goes through nginx."""
    client = Api(cluster.base_url, max_clients=100)
    yield client
    client.close()

