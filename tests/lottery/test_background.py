"""lottery/background.py: the one lifecycle of every background loop (rounds, back-off with one
warning per incident, stop with a grace), and background work that outlives its request."""
import asyncio
import logging

import pymongo
import pytest
from pymongo.errors import AutoReconnect

from lottery.background import Background, Loop
from tests.waiting import until


@pytest.mark.gen_test(timeout=30)
async def test_a_busy_round_is_followed_at_once_and_an_idle_one_waits_its_interval():
    rounds = []

    async def round_() -> bool:
        rounds.append(asyncio.get_running_loop().time())
        return len(rounds) < 5  # busy four times, then idle

    loop = Loop("test", round_, interval=3600)
    loop.start()
    await until(lambda: len(rounds) >= 5, timeout=10)
    await asyncio.sleep(0.2)
    await loop.stop()
    assert len(rounds) == 5  # the idle fifth round is followed by an hour's pause, cut by stop()


@pytest.mark.gen_test(timeout=30)
async def test_a_failing_round_backs_off_with_one_warning_per_incident_and_one_line_when_it_works_again(caplog):
    outcomes = [AutoReconnect("gone"), AutoReconnect("gone"), AutoReconnect("gone"), None, None]

    async def round_() -> None:
        outcome = outcomes.pop(0) if outcomes else None
        if outcome is not None:
            raise outcome

    loop = Loop("flaky round", round_, interval=0.01, backoff_base=0.01)
    with caplog.at_level(logging.INFO, logger="lottery.backoff"):
        loop.start()
        await until(lambda: not outcomes and loop.rounds >= 6, timeout=10)
        await loop.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "lottery.backoff"]
    assert [line for line in lines if "unreachable" in line] == [
        "flaky round: the database is unreachable (AutoReconnect); retrying with backoff"]
    assert [line for line in lines if "working again" in line] == ["flaky round: working again after 3 failed rounds"]


@pytest.mark.gen_test(timeout=30)
async def test_a_bug_in_a_round_is_logged_with_its_traceback_and_the_loop_goes_on(caplog):
    calls = []

    async def round_() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("a bug")

    loop = Loop("buggy round", round_, interval=0.01, backoff_base=0.01)
    loop.start()
    await until(lambda: len(calls) >= 3, timeout=10)
    await loop.stop()
    [failure] = [r for r in caplog.records if r.name == "lottery.backoff" and r.levelno == logging.ERROR]
    assert failure.exc_info and failure.exc_info[0] is ValueError


@pytest.mark.gen_test(timeout=30)
async def test_stop_lets_the_round_under_way_finish_within_its_grace_then_cancels_it():
    finished, cut = [], []

    async def drains(items: int) -> None:
        try:
            for _ in range(items):
                if loop.stopping:  # rounds look between their items
                    break
                await asyncio.sleep(0.05)
            finished.append(True)
        except asyncio.CancelledError:
            cut.append(True)
            raise

    loop = Loop("drain", lambda: drains(3), interval=3600)
    loop.start()
    await asyncio.sleep(0.02)
    await loop.stop(grace=5)
    assert (finished, cut) == ([True], [])  # it saw `stopping` and ended its round itself

    loop = Loop("stuck", lambda: asyncio.sleep(3600), interval=3600)
    loop.start()
    await asyncio.sleep(0.02)
    await loop.stop(grace=0.1)
    assert not loop.running


@pytest.mark.gen_test(timeout=30)
async def test_on_stop_runs_once_the_loop_has_stopped():
    events = []

    async def round_() -> None:
        events.append("round")

    async def on_stop() -> None:
        events.append("stopped")

    loop = Loop("with a hook", round_, interval=3600, on_stop=on_stop)
    loop.start()
    await until(lambda: events, timeout=10)
    await loop.stop()
    assert events == ["round", "stopped"]


@pytest.mark.gen_test(timeout=30)
async def test_background_work_started_by_a_request_does_not_inherit_its_database_budget(db):
    background, done = Background(), []

    async def draw_begun_by_the_request() -> None:
        await asyncio.sleep(0.2)
        await db.command("ping")
        done.append(True)

    with pymongo.timeout(0.05):  # a request's budget, nearly spent
        background.spawn(draw_begun_by_the_request())
    assert await background.idle(timeout=5)
    assert done == [True]  # its own work, not cut short when the request's budget ran out
