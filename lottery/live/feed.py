"""What changed in the gifts, as typed events: one change stream per process (resumed with its
token after a loss), or polling where change streams are unavailable. Whenever a stream
(re)opens, the watched gifts are read again (a resync), so nothing that changed while it was
down is missed; consumers drop what is not newer than what they have."""
import asyncio
import logging
import time
from typing import AsyncIterator, Callable, Collection, NamedTuple

from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError

from lottery import metrics
from lottery.backoff import Backoff, database_away
from lottery.storage import gifts

log = logging.getLogger(__name__)

# Server errors meaning "no change streams here" (standalone mongod, some proxies).
NO_CHANGE_STREAMS = {40573, 40324, 136}
# The resume token is too old or unknown: start a new stream (and resync every gift).
TOKEN_LOST = {260, 280, 286}


class GiftChange(NamedTuple):
    """A gift changed: its new version and the watched fields that came with it."""

    order_id: str
    version: int
    status: str | None = None
    joined_count: int | None = None
    freeze: dict | None = None  # a drawing gift's frozen participant list (hash, time, beacon round)


class GiftFeed:
    """Changes of the gifts `watched()` names, from a change stream or a poll."""

    def __init__(self, db: AsyncDatabase, watched: Callable[[], Collection[str]],
                 force_polling: bool = False, poll_interval: float = 0.5, retry_delay: float = 1.0,
                 on_outage: Callable[[], None] | None = None) -> None:
        self.db = db
        self.on_outage = on_outage  # called when the database cannot be reached to follow it
        self._backoff = Backoff("realtime change stream", base=retry_delay)
        self.watched = watched
        self.mode = "polling" if force_polling else "change_stream"
        self.poll_interval = poll_interval
        self.retry_delay = retry_delay
        self.ready = asyncio.Event()  # set once the first stream is open (or polling began)
        self.following = False  # a stream is open, or polling works, right now
        self.active = False  # somebody follows the changes (the hub has started)
        self._resume_token: dict | None = None

    async def changes(self) -> AsyncIterator[GiftChange]:
        """Every change, forever (until the consumer stops iterating)."""
        self.active = True
        first = True
        while True:
            if self.mode == "polling":
                metrics.LIVE_POLLING.set(1)
                async for change in self._poll():
                    yield change
            if not first:
                metrics.CHANGE_STREAM_RESTARTS.inc()
            first = False
            stream = await self._open()
            if stream is not None:
                async for change in self._follow(stream):
                    yield change

    async def _open(self) -> AsyncChangeStream | None:
        """A stream resumed after the last token; None after deciding what to try next
        (polling, a fresh stream, or a retry after a pause)."""
        try:
            stream = await gifts.watch(self.db, self._resume_token)
            self._backoff.succeeded()
            return stream
        except OperationFailure as exc:
            if exc.code in NO_CHANGE_STREAMS or "replica set" in str(exc):
                log.warning("change streams unavailable (%s); realtime falls back to polling every %.1f s",
                            exc, self.poll_interval)
                self.mode = "polling"
                return None
            if exc.code in TOKEN_LOST and self._resume_token is not None:
                log.warning("change stream cannot resume (%s); starting a new one", exc)
                self._resume_token = None
                return None
            log.warning("change stream failed to open (%s); retrying", exc)
        except PyMongoError as exc:
            if database_away(exc) and self.on_outage is not None:
                self.on_outage()
            await asyncio.sleep(self._backoff.failed(exc))
            return None
        await asyncio.sleep(self.retry_delay)
        return None

    async def _follow(self, stream: AsyncChangeStream) -> AsyncIterator[GiftChange]:
        """A resync, then the stream's events until it ends or fails."""
        try:
            async with stream:
                for change in await self._states():
                    yield change
                self.ready.set()
                self.following = True
                loop = asyncio.get_running_loop()
                while stream.alive:
                    asked = loop.time()
                    event = await stream.try_next()
                    self._resume_token = stream.resume_token
                    if event is not None:
                        order_id, fields = gifts.change_fields(event)
                        if isinstance(fields.get("version"), int):
                            yield GiftChange(order_id, fields["version"], fields.get("status"),
                                             fields.get("joined_count"), fields.get("freeze"))
                    elif loop.time() - asked < 0.005:
                        await asyncio.sleep(0.02)  # a server that answers getMore without waiting
            self.following = False
            log.warning("change stream ended; reopening it")
        except PyMongoError as exc:
            self.following = False
            if isinstance(exc, OperationFailure) and exc.code in TOKEN_LOST:
                self._resume_token = None
            log.warning("change stream lost (%s); resuming", exc)
            await asyncio.sleep(self.retry_delay)

    async def _poll(self) -> AsyncIterator[GiftChange]:
        self.ready.set()
        while True:
            started = time.monotonic()
            try:
                for change in await self._states():
                    yield change
                self.following = True
            except PyMongoError as exc:
                self.following = False
                log.warning("realtime poll failed (%s); retrying", exc)
            await asyncio.sleep(max(0.0, self.poll_interval - (time.monotonic() - started)))

    async def _states(self) -> list[GiftChange]:
        """The current state of every watched gift."""
        watched = list(self.watched())
        if not watched:
            return []
        return [GiftChange(s["_id"], s["version"], s.get("status"), s.get("joined_count"), s.get("freeze"))
                for s in await gifts.states(self.db, watched)]
