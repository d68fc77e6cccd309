"""Notification fixtures: an in-process worker with fast backoff."""
from datetime import timedelta

import pytest

from notify.templates import parse_config
from notify.worker import Limits, NotificationWorker
from tests.notify.support import CONFIG_JSON


@pytest.fixture
def make_worker(db, wechat, io_loop):
    """Build workers over the test database and the fake; stopped at the end of the test."""
    workers = []

    def build(**limits) -> NotificationWorker:
        defaults = dict(rate=0, concurrency=8, lease=timedelta(seconds=3), backoff_base=0.05,
                        backoff_cap=0.3, poll_interval=0.05)
        worker = NotificationWorker(db, wechat, parse_config(CONFIG_JSON), Limits(**{**defaults, **limits}))
        workers.append(worker)
        return worker

    yield build
    for worker in workers:
        io_loop.run_sync(worker.stop)
