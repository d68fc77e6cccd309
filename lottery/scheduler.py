"""Timed openings: one APScheduler job per gift with a due time, a sweep that opens whatever is
overdue (jobs lost while down, clock steps, bugs), and a leader lease so only one scheduler
process is active; a second one waits as a standby and takes over when the lease lapses.

The jobs are kept in memory: the gifts themselves say when each is due (`due_at`), so the
leader's every round gives the open gifts due within its horizon their jobs (those it has
not given one yet), read through the (status, due_at) index. A job store in the database held
the same facts twice, and reading, unpickling and deleting 200 jobs due together made them a
fifth of a second late; a `scheduled` mark on each gift cost one more write of every gift and
one more index to keep up on every write of a gift (docs/benchmarks.md). APScheduler runs on
its own thread (BackgroundScheduler), so its wakeups never wait for the event loop; a job only
hands the gift to the draw on the event loop, where gifts due together are batched."""
import asyncio
import contextvars
import logging
from datetime import datetime, timedelta
from typing import Awaitable, Callable

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock, logs
from lottery.background import Loop
from lottery.draw import Draws
from lottery.storage import gifts, leases

log = logging.getLogger(__name__)

LEADER_LEASE = "scheduler"
READ_AHEAD_JOB = ":read_ahead"  # the id of a timed gift's second job: its order id and this
READ_AHEAD = timedelta(seconds=10)  # how long before its open time a big gift's records are read
# How far ahead of the read-ahead the leader gives gifts their jobs: rounds to spare.
SPARE = timedelta(seconds=20)


def open_gift_job(order_id: str) -> None:
    """What a gift's job runs. Nothing: the job keeps *when* a gift is due, and the scheduler
    that submitted it hands the gift (the job's id) to its own draws through its listener, so
    no job needs to find a scheduler by a global."""


def read_ahead_job(order_id: str) -> None:
    """What a gift's read-ahead job runs: nothing, as `open_gift_job`."""


class Scheduler:
    """Leader election, APScheduler jobs and the safety-net sweep, in rounds of a `Loop`."""

    def __init__(self, db: AsyncDatabase, draws: Draws, sweep_interval: float = 1.0,
                 lease_seconds: float = 10.0, sweeps: list[Callable[[], Awaitable]] = (),
                 read_ahead: timedelta = READ_AHEAD) -> None:
        self.db = db
        self.draws = draws
        self.sweep_interval = sweep_interval
        self.sweeps = list(sweeps)  # more work of the leader's every round (expiring orders)
        self.read_ahead = read_ahead
        self.horizon = read_ahead + SPARE  # the gifts due within it have their jobs
        self.lease = timedelta(seconds=lease_seconds)
        self.owner = leases.owner_id()
        self.is_leader = False
        self.loop = Loop("scheduler round", self._round, sweep_interval, on_stop=self._hand_over)
        self._aps: BackgroundScheduler | None = None
        self._jobs: dict[str, datetime] = {}  # the gifts this leader gave a job, with its due time
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
        self._step_down()
        if was_leader:  # hand over now: a standby need not wait for the lease to lapse
            await leases.release(self.db, LEADER_LEASE, self.owner, clock.utcnow())

    async def _round(self) -> None:
        if await self._hold_lease():
            if not self.is_leader:
                self._take_over()
            with logs.bound(f"sweep-{logs.new_request_id()}"):  # what the round starts logs as it
                await self._schedule_due_soon()
                await self.draws.sweep()
                for sweep in self.sweeps:
                    await sweep()
        elif self.is_leader:
            log.warning("scheduler lost its leader lease; standing by")
            self._step_down()

    async def _hold_lease(self) -> bool:
        """Take or renew the leader lease; False while another live process holds it."""
        now = clock.utcnow()
        return await leases.hold(self.db, LEADER_LEASE, self.owner, now, now + self.lease)

    def _take_over(self) -> None:
        """Lead: an APScheduler with no jobs yet (this round gives them)."""
        log.info("scheduler %s is now the leader", self.owner)
        self.is_leader = True
        self._jobs = {}
        self._aps = BackgroundScheduler(timezone="UTC", job_defaults={"misfire_grace_time": None, "coalesce": True})
        self._aps.add_listener(self._job_submitted, EVENT_JOB_SUBMITTED)
        self._aps.start()

    def _add_job(self, gift: dict) -> None:
        """The gift's job at its due time, and a timed gift's read-ahead job before it (the
        draw looks at its size then)."""
        due_at = clock.as_utc(gift["due_at"])
        self._aps.add_job(open_gift_job, "date", run_date=due_at, args=[gift["_id"]],
                          id=gift["_id"], replace_existing=True)
        if gift.get("method") == "timed" and due_at - self.read_ahead > clock.utcnow():
            self._aps.add_job(read_ahead_job, "date", run_date=due_at - self.read_ahead, args=[gift["_id"]],
                              id=gift["_id"] + READ_AHEAD_JOB, replace_existing=True)

    def _job_submitted(self, event: JobSubmissionEvent) -> None:
        """On APScheduler's thread, at a gift's open time or full-gift deadline: hand the gift
        to the draw on the event loop, batched with the other gifts due in the same instant (or,
        before a timed gift's time, have its records read ahead); its lines log with an id of
        their own."""
        context = contextvars.copy_context()
        context.run(logs.REQUEST_ID.set, f"job-{logs.new_request_id()}")
        if event.job_id.endswith(READ_AHEAD_JOB):
            order_id = event.job_id.removesuffix(READ_AHEAD_JOB)
            self._event_loop.call_soon_threadsafe(self.draws.read_ahead_soon, order_id, context=context)
        else:
            self._event_loop.call_soon_threadsafe(self.draws.open_soon, event.job_id, context=context)

    def _step_down(self) -> None:
        self.is_leader = False
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None

    async def _schedule_due_soon(self) -> None:
        """Give each open gift due within the horizon its job, once per due time. A gift due
        already (while no scheduler led) gets a job that runs at once."""
        jobs = {}
        for gift in await gifts.due_by(self.db, clock.utcnow() + self.horizon):
            jobs[gift["_id"]] = clock.as_utc(gift["due_at"])
            if self._jobs.get(gift["_id"]) != jobs[gift["_id"]]:
                self._add_job(gift)
        self._jobs = jobs  # those no longer open are forgotten
