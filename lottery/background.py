"""Work that runs after the caller has its answer: started, logged if it fails, and finished
(or cancelled) by `idle()` at shutdown. The draw's batching and its delayed outcome copies live
here, so the draw itself reads as its state transitions."""
import asyncio
import logging
from typing import Awaitable, Callable

from lottery import logs
from lottery.backoff import database_away

log = logging.getLogger(__name__)


class Loop:
    """One coroutine, `_run`, run as a task from `start()` until `stop()` cancels it (the
    periodic rounds of the refund worker and the backlog gauges)."""
    _task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        raise NotImplementedError


class Background:
    """A process's background tasks, with a delay that `idle()` cuts short."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Future] = set()
        self._hurry = asyncio.Event()  # set by idle(): pauses end at once

    def spawn(self, work: Awaitable) -> asyncio.Future:
        """Run `work` in the background; a failure is logged (the sweep retries)."""
        task = asyncio.ensure_future(self._logged(work))
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
