"""Timed gifts open on time, after downtime, and under exactly one active scheduler."""
import asyncio
import logging
from datetime import timedelta

import pytest

from lottery import clock
from lottery.draw import Draws
from tests import beacons
from lottery.scheduler import LEADER_LEASE, Scheduler
from lottery.storage import leases
from tests.gifts import make_gift
from tests.waiting import until, until_past


async def timed_gift(gifts, seconds_ahead: float) -> dict:
    return await make_gift(gifts, "timed", joiners=3, items=1,
                           open_at=clock.utcnow() + timedelta(seconds=seconds_ahead))


async def finished(db, order_id: str) -> dict | None:
    gift = await db.gifts.find_one({"_id": order_id})
    return gift if gift["status"] == "finished" else None


def scheduler(db, draws: dict | None = None, **kwargs) -> Scheduler:
    """A scheduler with a short sweep interval; `draws`: options of its Draws."""
    return Scheduler(db, Draws(db, beacons.beacon(), beacons.receipt_key(), **(draws or {})), sweep_interval=0.2, **kwargs)


def job_of(running: Scheduler, order_id: str):
    """The gift's APScheduler job in this scheduler, if it is leading and has one."""
    return running._aps.get_job(order_id) if running._aps is not None else None


async def stopped(running: Scheduler) -> None:
    """Stop as server.py does: the scheduler, then its draws' background work."""
    await running.stop()
    await running.draws.idle(timeout=5)


@pytest.mark.gen_test(timeout=60)
async def test_a_timed_gift_opens_at_its_time_not_before_and_its_job_is_used_up(db, gifts):
    gift = await timed_gift(gifts, 2)
    running = scheduler(db)
    running.start()
    try:
        await until(lambda: finished(db, gift["_id"]))
        opened = await finished(db, gift["_id"])
        assert opened["opened_at"] >= opened["open_at"]  # how late is measured in bench/draw.py
        assert job_of(running, gift["_id"]) is None  # the job ran and is used up
    finally:
        await stopped(running)


@pytest.mark.gen_test(timeout=60)
async def test_a_gift_due_while_no_scheduler_ran_opens_at_restart(db, gifts):
    gift = await timed_gift(gifts, 3)
    first = scheduler(db)
    first.start()
    # It gives the gift its job, then goes down before the open time.
    await until(lambda: job_of(first, gift["_id"]))
    await stopped(first)
    await until_past(gift["open_at"])
    assert (await db.gifts.find_one({"_id": gift["_id"]}))["status"] == "open"
    second = scheduler(db)
    second.start()
    try:
        await until(lambda: finished(db, gift["_id"]))
    finally:
        await stopped(second)


@pytest.mark.gen_test(timeout=60)
async def test_a_new_leader_gives_every_open_gift_due_soon_its_job_including_those_the_last_one_scheduled(db, gifts):
    a, b = scheduler(db, lease_seconds=30), scheduler(db, lease_seconds=30)
    a.start()
    await until(lambda: a.is_leader)
    gift = await timed_gift(gifts, 4)
    await until(lambda: job_of(a, gift["_id"]))
    b.start()
    await stopped(a)  # hands the lease over
    try:
        await until(lambda: b.is_leader, timeout=20)
        # Its first round as leader gives the job (after a read: it leads a moment before).
        job = await until(lambda: job_of(b, gift["_id"]), timeout=10)
        assert job.next_run_time == clock.as_utc(gift["open_at"])
        assert (await db.gifts.find_one({"_id": gift["_id"]}))["status"] == "open"  # not yet due
        await until(lambda: finished(db, gift["_id"]))
        opened = await finished(db, gift["_id"])
        assert opened["opened_at"] >= opened["open_at"]
    finally:
        await stopped(b)


@pytest.mark.gen_test(timeout=60)
async def test_a_gift_gets_its_job_once_due_within_the_horizon_and_a_new_one_when_its_time_moves(db, gifts):
    running = scheduler(db, read_ahead=timedelta(seconds=1))  # a horizon of 21 s
    later = await timed_gift(gifts, 40)
    soon = await timed_gift(gifts, 4)
    running.start()
    try:
        await until(lambda: job_of(running, soon["_id"]))
        rounds = running.rounds
        await until(lambda: running.rounds > rounds + 1)
        assert job_of(running, later["_id"]) is None  # the leader holds no job for what is far off
        open_at = (clock.utcnow() + timedelta(seconds=3)).replace(microsecond=0)
        await db.gifts.update_one({"_id": later["_id"]}, {"$set": {"open_at": open_at, "due_at": open_at}})
        await until(lambda: job_of(running, later["_id"]))
        assert job_of(running, later["_id"]).next_run_time == open_at
        await db.gifts.update_one({"_id": soon["_id"]}, {"$set": {"open_at": open_at, "due_at": open_at}})
        await until(lambda: (job := job_of(running, soon["_id"])) and job.next_run_time == open_at)
    finally:
        await stopped(running)


@pytest.mark.gen_test(timeout=60)
async def test_a_big_timed_gifts_records_are_read_ahead_of_its_open_time(db, gifts, caplog):
    gift = await timed_gift(gifts, 4)  # three joiners
    running = scheduler(db, draws={"read_ahead_at_least": 3}, read_ahead=timedelta(seconds=2))
    with caplog.at_level(logging.INFO, logger="lottery.read_ahead"):
        running.start()
        try:
            await until(lambda: any("read ahead of its draw" in r.getMessage() for r in caplog.records))
            assert (await db.gifts.find_one({"_id": gift["_id"]}))["status"] == "open"  # before its time
            await until(lambda: finished(db, gift["_id"]))
        finally:
            await stopped(running)


@pytest.mark.gen_test(timeout=60)
async def test_one_leader_at_a_time_and_a_standby_takes_over_only_once_the_lease_lapses(db, gifts):
    a, b = scheduler(db, lease_seconds=2), scheduler(db, lease_seconds=2)
    a.start()
    await until(lambda: a.is_leader)
    b.start()
    await until(lambda: b.rounds >= 5)  # a standby that tried, again and again
    assert (a.is_leader, b.is_leader) == (True, False)
    # a dies without handing over: its lease must lapse first. (Cancelled until it is done: a
    # cancellation that lands inside a driver call can be absorbed there, and a round goes on.)
    while not a.loop._task.done():
        a.loop._task.cancel()
        await asyncio.sleep(0.05)
    lapses = (await db.leases.find_one({"_id": LEADER_LEASE}))["until"]
    try:
        await until(lambda: b.is_leader)
        assert clock.utcnow() > clock.as_utc(lapses)
        gift = await timed_gift(gifts, 2)
        await until(lambda: finished(db, gift["_id"]))
    finally:
        await stopped(b)
        a._step_down()


@pytest.mark.gen_test(timeout=60)
async def test_a_clean_stop_hands_the_lease_over_at_once(db, gifts):
    a, b = scheduler(db, lease_seconds=30), scheduler(db, lease_seconds=30)
    a.start()
    await until(lambda: a.is_leader)
    b.start()
    await until(lambda: b.rounds >= 2)
    await stopped(a)
    try:
        await until(lambda: b.is_leader, timeout=20)  # long before a's 30 s lease would lapse
    finally:
        await stopped(b)


@pytest.mark.gen_test(timeout=30)
async def test_a_leader_that_renews_its_lease_is_never_displaced_and_a_lapsed_one_is(db):
    start = clock.utcnow()
    term = timedelta(seconds=10)
    assert await leases.hold(db, LEADER_LEASE, "a", start, start + term)
    assert not await leases.hold(db, LEADER_LEASE, "b", start + timedelta(seconds=1), start + timedelta(seconds=11))
    assert await leases.hold(db, LEADER_LEASE, "a", start + timedelta(seconds=5), start + timedelta(seconds=15))
    # Past the first term but inside the renewed one: still a's.
    assert not await leases.hold(db, LEADER_LEASE, "b", start + timedelta(seconds=12), start + timedelta(seconds=22))
    # Lapsed: b takes it, and a's next renewal fails.
    assert await leases.hold(db, LEADER_LEASE, "b", start + timedelta(seconds=16), start + timedelta(seconds=26))
    assert not await leases.hold(db, LEADER_LEASE, "a", start + timedelta(seconds=17), start + timedelta(seconds=27))
    assert (await leases.get(db, LEADER_LEASE))["owner"] == "b"
    # A first term lapses like a renewed one.
    assert await leases.hold(db, "other", "a", start, start + term)
    assert await leases.hold(db, "other", "b", start + timedelta(seconds=11), start + timedelta(seconds=21))
