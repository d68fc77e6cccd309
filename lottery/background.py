"""Work that runs after the caller has its answer: started, logged if it fails, and finished
(or cancelled) by `idle()` at shutdown. The draw's batching and its delayed outcome copies live
here, so the draw itself reads as its state transitions."""
import asyncio
import contextvars
import logging
import time
from typing import Awaitable, Callable

import pymongo

from lottery import logs
from lottery.backoff import Backoff, database_away

log = logging.getLogger(__name__)

DEFAULT_ROUND_TIMEOUT = 30.0  # seconds


class Loop:
    """The one lifecycle of every background loop in a process (the scheduler's rounds, the
    notification expansion and delivery, the refund worker, the backlog gauges, the live feed).

    `round()` runs again and again from `start()` until `stop()`. A round that found work
    (returns something true) is followed at once; an idle one by a pause of `interval`. A round
    that fails, whatever the error, is followed by a longer pause (doubling to a cap) and logged
    once per incident (lottery/backoff.py: a warning when the database is away or hangs past
    `timeout`, a traceback otherwise). `stop(grace)` sets `stopping`, which rounds check between items, lets the round
    under way finish within `grace` seconds, cancels it if it has not, then runs `on_stop`."""

    def __init__(self, name: str, round: Callable[[], Awaitable[object]], interval: float,
                 on_stop: Callable[[], Awaitable[None]] | None = None, backoff_base: float = 0.5,
                 timeout: float | None = DEFAULT_ROUND_TIMEOUT) -> None:
        self.name = name
        self.round = round
        self.interval = interval
        # What a round may spend on the database (PyMongo's client-side timeout): a database
        # that hangs ends the round, which backs off, instead of holding the loop for good.
        self.timeout = timeout
        self.on_stop = on_stop
        self.backoff = Backoff(name, base=backoff_base)
        self.rounds = 0  # rounds run, failed ones included
        self.last_success_at: float | None = None  # monotonic time of the last round that worked
        self.stopping = False
        self._wake = asyncio.Event()  # ends a pause early (stop)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Run the rounds in the background on the running event loop (idempotent)."""
        if self._task is None or self._task.done():
            self.stopping = False
            self._wake.clear()
            self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self, grace: float = 0.0) -> None:
        """Stop after the round under way (within `grace` seconds, else cancel it); then `on_stop`."""
        self.stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            if grace > 0:
                await asyncio.wait([task], timeout=grace)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self.on_stop is not None:
            await self.on_stop()

    async def _run(self) -> None:
        while not self.stopping:
            try:
                with pymongo.timeout(self.timeout):
                    busy = await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug or a lost database must not end the loop
                pause = max(self.interval, self.backoff.failed(exc))
            else:
                self.backoff.succeeded()
                self.last_success_at = time.monotonic()
                pause = 0.0 if busy else self.interval
            self.rounds += 1
            await self._pause(pause)

    async def _pause(self, seconds: float) -> None:
        if seconds <= 0 or self.stopping:
            await asyncio.sleep(0)  # a busy loop still lets the event loop serve others
            return
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass


class Background:
    """A process's background tasks, with a delay that `idle()` cuts short."""

    def __init__(self) -> None:
        self._context = contextvars.copy_context()
        self._tasks: set[asyncio.Future] = set()
        self._hurry = asyncio.Event()  # set by idle(): pauses end at once

    def spawn(self, work: Awaitable) -> asyncio.Future:
        """Run `work` in the background; a failure is logged (the sweep retries)."""
        # Its own context, as the process started: not the request's that set it off, whose
        # database budget (pymongo.timeout) must not cut short a draw it began.
        task = asyncio.get_running_loop().create_task(self._logged(work), context=self._context.copy())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def pause(self, seconds: float) -> None:
        """Wait `seconds`, or less if idle() is waiting for the work to finish."""
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self._hurry.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def idle(self, timeout: float | None = None) -> bool:
        """Finish the background work now (pauses end at once) and wait for it, including work
        it starts meanwhile. With a timeout (shutdown), what is left is cancelled. True if
        everything finished."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        self._hurry.set()
        try:
            while self._tasks:
                left = None if deadline is None else deadline - loop.time()
                if left is not None and left <= 0:
                    for task in list(self._tasks):
                        task.cancel()
                    return False
                await asyncio.wait(list(self._tasks), timeout=left)
            return True
        finally:
            self._hurry.clear()

    @staticmethod
    async def _logged(work: Awaitable) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Leases and idempotent writes make a retry by the sweep safe.
            if database_away(exc):
                log.warning("background work stopped: the database is unreachable (%s); the sweep retries it",
                            type(exc).__name__)
            else:
                log.exception("background work failed")


class Batches:
    """Keys queued within `window` seconds go to `run` as one batch, one batch at a time; keys
    queued while a batch runs make the next one. A batch logs under the request id of the last
    request that added to it (the join that took the last seat, say)."""

    def __init__(self, run: Callable[[set[str]], Awaitable], background: Background, window: float) -> None:
        self.run = run
        self.background = background
        self.window = window
        self._queued: set[str] = set()
        self._request_id: str | None = None
        self._drainer: asyncio.Future | None = None

    @property
    def busy(self) -> bool:
        """A batch is queued or running."""
        return self._drainer is not None and not self._drainer.done()

    def add(self, key: str) -> None:
        self._queued.add(key)
        self._request_id = logs.REQUEST_ID.get()
        if self._drainer is None or self._drainer.done():
            self._drainer = self.background.spawn(self._drain())

    async def _drain(self) -> None:
        await asyncio.sleep(self.window)
        while self._queued:
            batch, self._queued = self._queued, set()
            with logs.bound(self._request_id):
                await self.run(batch)
