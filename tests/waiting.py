"""Waiting in tests: for a condition, with a generous deadline, never for a fixed time."""
import asyncio
import time
from datetime import datetime
from typing import Any, Callable

from lottery import clock


async def until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Wait until `predicate()` (a plain or async callable) is truthy; returns its value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


async def until_past(moment: datetime) -> None:
    """Wait until the clock has passed `moment` (a lease's end, an open time)."""
    await until(lambda: clock.utcnow() > clock.as_utc(moment), interval=0.02)


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """`until` for a test without an event loop (tests/test_server.py: real processes driven
    synchronously, after the browser tests have left the session's thread in a running loop)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(interval)
