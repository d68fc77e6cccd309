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

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.jobstores.mongodb import MongoDBJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from pymongo import MongoClient
from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock, logs
from lottery.background import Loop
from lottery.draw import Draws
from lottery.storage import gifts, leases

log = logging.getLogger(__name__)

LEADER_LEASE = "scheduler"


def open_gift_job(order_id: str) -> None:  # the name stored jobs refer to: keep it
    """What a gift's job runs. Nothing: the job store keeps *when* a gift is due, and the
    scheduler that submitted the job hands the gift (the job's id) to its own draws through
    its listener, so no job needs to find a scheduler by a global."""


class Scheduler:
    """Leader election, APScheduler jobs and the safety-net sweep, in rounds of a `Loop`."""

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
        self.loop = Loop("scheduler round", self._round, sweep_interval, on_stop=self._hand_over)
        self._sync_client: MongoClient | None = None
        self._aps: BackgroundScheduler | None = None
        self._event_loop: asyncio.AbstractEventLoop | None = None

    @property
    def rounds(self) -> int:
        """Rounds run, as leader or standby."""
        return self.loop.rounds

    @property
    def last_round_at(self) -> float | None:
        """Monotonic time of the last round that worked."""
        return self.loop.last_success_at

    def start(self) -> None:
        self._event_loop = asyncio.get_running_loop()
        self.loop.start()

    async def stop(self) -> None:
        await self.loop.stop()

    async def _hand_over(self) -> None:
        was_leader = self.is_leader
        await asyncio.to_thread(self._step_down)  # closing the job store's client may wait on the database
        if was_leader:  # hand over now: a standby need not wait for the lease to lapse
            await leases.release(self.db, LEADER_LEASE, self.owner, clock.utcnow())

    async def _round(self) -> None:
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
            await asyncio.to_thread(self._step_down)

    async def _hold_lease(self) -> bool:
        """Take or renew the leader lease; False while another live process holds it."""
        now = clock.utcnow()
        return await leases.hold(self.db, LEADER_LEASE, self.owner, now, now + self.lease)

    def _take_over(self) -> None:
        log.info("scheduler %s is now the leader", self.owner)
        self.is_leader = True
        # Its calls block a thread: a short server selection, so a lost database fails them fast.
        self._sync_client = MongoClient(self.sync_uri, tz_aware=True, serverSelectionTimeoutMS=2000)
        store = MongoDBJobStore(database=self.db.name, collection="scheduler_jobs",
                                client=self._sync_client)
        self._aps = BackgroundScheduler(jobstores={"default": store}, timezone="UTC",
                                        job_defaults={"misfire_grace_time": None, "coalesce": True})
        self._aps.add_listener(self._job_submitted, EVENT_JOB_SUBMITTED)
        self._aps.start()

    def _job_submitted(self, event: JobSubmissionEvent) -> None:
        """On APScheduler's thread, at a gift's open time or full-gift deadline: hand the gift
        to the draw on the event loop, batched with the other gifts due in the same instant; its
        lines log with an id of their own."""
        context = contextvars.copy_context()
        context.run(logs.REQUEST_ID.set, f"job-{logs.new_request_id()}")
        self._event_loop.call_soon_threadsafe(self.draws.open_soon, event.job_id, context=context)

    def _step_down(self) -> None:
        self.is_leader = False
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
