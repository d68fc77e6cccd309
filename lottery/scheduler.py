"""Timed openings: one APScheduler job per gift in a persistent MongoDB job store, a sweep that
opens whatever is overdue (jobs lost while down, clock steps, bugs), and a leader lease so only
one scheduler process is active; a second one waits as a standby and takes over when the lease
lapses.

APScheduler runs on its own thread (BackgroundScheduler): its MongoDB job store is synchronous,
and two hundred jobs due at once would otherwise block the event loop for most of a second.
Jobs only hand the gift to the draw on the event loop, where gifts due together are batched."""
import asyncio
import contextvars
import logging
from datetime import timedelta
from typing import Awaitable, Callable

from apscheduler.jobstores.mongodb import MongoDBJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from pymongo import MongoClient
from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock, logs
from lottery.draw import Draws
from lottery.storage import gifts, leases

log = logging.getLogger(__name__)

LEADER_LEASE = "scheduler"

# APScheduler's persistent jobs name their function by import path and cannot carry the Draws
# object, so the job looks up the one active in this process here (one scheduler per process).
_active: dict[str, tuple[Draws, asyncio.AbstractEventLoop]] = {}


def open_gift_job(order_id: str) -> None:
    """The job APScheduler runs (on its thread) at a gift's open time or full-gift deadline."""
    active = _active.get("current")
    if active is None:
        log.warning("job for gift %s ran with no active scheduler; the sweep will open it", order_id)
        return
    draws, loop = active
    # Batched on the loop with the other gifts due in the same instant; its lines log with an
    # id of their own.
    context = contextvars.copy_context()
    context.run(logs.REQUEST_ID.set, f"job-{logs.new_request_id()}")
    loop.call_soon_threadsafe(draws.open_soon, order_id, context=context)


class Scheduler:
    """Leader election, APScheduler jobs and the safety-net sweep."""

    def __init__(self, db: AsyncDatabase, draws: Draws, sync_uri: str, sweep_interval: float = 1.0,
                 lease_seconds: float = 10.0, sweeps: list[Callable[[], Awaitable]] = ()) -> None:
        self.db = db
        self.draws = draws
        self.sync_uri = sync_uri
        self.sweep_interval = sweep_interval
        self.sweeps = list(sweeps)  # more work of the leader's every round (expiring orders)
        self.lease = timedelta(seconds=lease_seconds)
        self.owner = leases.owner_id()
        self.is_leader = False
        self.rounds = 0  # rounds completed, as leader or standby
        self._sync_client: MongoClient | None = None
        self._aps: BackgroundScheduler | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        was_leader = self.is_leader
        self._step_down()
        if was_leader:  # hand over now: a standby need not wait for the lease to lapse
            await leases.release(self.db, LEADER_LEASE, self.owner, clock.utcnow())

    async def _run(self) -> None:
        while True:
            try:
                if await self._hold_lease():
                    if not self.is_leader:
                        self._take_over()
                    with logs.bound(f"sweep-{logs.new_request_id()}"):  # what the round starts logs as it
                        await self._schedule_new_gifts()
                        await self.draws.sweep()
                        for sweep in self.sweeps:
                            await sweep()
                elif self.is_leader:
                    log.warning("scheduler lost its leader lease; standing by")
                    self._step_down()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler round failed; retrying")
            self.rounds += 1
            await asyncio.sleep(self.sweep_interval)

    async def _hold_lease(self) -> bool:
        """Take or renew the leader lease; False while another live process holds it."""
        now = clock.utcnow()
        return await leases.hold(self.db, LEADER_LEASE, self.owner, now, now + self.lease)

    def _take_over(self) -> None:
        log.info("scheduler %s is now the leader", self.owner)
        self.is_leader = True
        _active["current"] = (self.draws, asyncio.get_running_loop())
        self._sync_client = MongoClient(self.sync_uri, tz_aware=True)
        store = MongoDBJobStore(database=self.db.name, collection="scheduler_jobs",
                                client=self._sync_client)
        self._aps = BackgroundScheduler(jobstores={"default": store}, timezone="UTC",
                                        job_defaults={"misfire_grace_time": None, "coalesce": True})
        self._aps.start()

    def _step_down(self) -> None:
        self.is_leader = False
        _active.pop("current", None)
        if self._aps is not None:
            # Detach the job store first: APScheduler 3's shutdown closes it and then wakes its
            # thread for one more round, which would read the closed store and log an error.
            self._aps.remove_jobstore("default")
            self._aps.shutdown(wait=False)
            self._aps = None
        if self._sync_client is not None:
            self._sync_client.close()
            self._sync_client = None

    async def _schedule_new_gifts(self) -> None:
        """Give every open timed gift (and full gift's deadline) its job, once."""
        due = await gifts.unscheduled(self.db)
        for gift in due:
            self._aps.add_job(open_gift_job, "date", run_date=clock.as_utc(gift["due_at"]), args=[gift["_id"]],
                              id=gift["_id"], replace_existing=True)
        await gifts.mark_scheduled(self.db, [g["_id"] for g in due])
