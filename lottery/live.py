"""Live gift state for waiting pages: one hub per process, keyed by gift.

The gift document is the durable record: its `version` grows on every change and a draw marks
it `finished` in the same update that commits its winners (`draw.winners`). So the hub needs no
message log. It follows `gifts` with one change stream per process (or a polling loop where
change streams are unavailable) and, for every change of a gift somebody watches:

- `progress` (joined count, status): coalesced to one message per gift per `progress_interval`;
- `finished`: reads the gift and the watchers' joins (two queries whatever the number of
  watchers) and sends each watcher `opened` with their own `me`.

A subscriber says which version it has; it gets what is newer, never anything older, so a
client that reconnects with its version gets exactly what it missed. Transport-agnostic:
subscribers are anything with `member_id`, `send(text) -> bool` and `close(code, reason)`
(handlers/realtime.py adapts a websocket)."""
import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError

from lottery import clock
from lottery.gifts import drawn_winners, member_view, public_view
from lottery.storage import gifts as gift_store
from lottery.storage import live as store

log = logging.getLogger(__name__)

# Server errors meaning "no change streams here" (standalone mongod, some proxies).
NO_CHANGE_STREAMS = {40573, 40324, 136}
# The resume token is too old or unknown: start a new stream (and resync every gift).
TOKEN_LOST = {260, 280, 286}

FANOUT_SLICE = 500  # sends between yields to the event loop
SNAPSHOT, OPENED = b'{"type":"snapshot",', b'{"type":"opened",'


class Subscriber(Protocol):
    """One live connection."""

    member_id: str | None

    def send(self, text: str | bytes) -> bool:
        """Queue a text frame (str, or UTF-8 bytes) without waiting; False if the connection is
        gone (or was cut)."""

    def close(self, code: int, reason: str) -> None:
        """Close the connection."""


class GiftChange(NamedTuple):
    """A watched gift changed: its new version and the watched fields that came with it."""

    order_id: str
    version: int
    status: str | None = None
    joined_count: int | None = None


@dataclass
class _Watched:
    """One gift with subscribers in this process."""

    order_id: str
    subs: dict[Any, int] = field(default_factory=dict)  # subscriber -> the version it has (-1: none)
    unsettled: set = field(default_factory=set)  # subscribed, first answer not yet settled
    # subscribers waiting for a read of the gift -> why ("subscribe", "resume", "change")
    pending: dict[Any, str] = field(default_factory=dict)
    change_version: int = 0  # newest version seen from the stream or the poll
    # Join records of subscribed members, read once: a join never goes away, and the draw's
    # outcome comes from the finished gift's `draw.winners`, so the result needs no join reads.
    joins: dict[str, dict] = field(default_factory=dict)
    state: dict = field(default_factory=dict)  # newest known {version, status, joined_count, open_number}
    reader: asyncio.Task | None = None
    progress_timer: asyncio.TimerHandle | None = None
    progress_sent_at: float = 0.0


def encode(message: dict) -> str:
    """A compact JSON text frame (Chinese kept readable)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


class LiveHub:
    """Subscriptions by gift and their fan-out; owns the process's one change stream."""

    def __init__(self, db: AsyncDatabase, progress_interval: float = 0.25, poll_interval: float = 0.5,
                 force_polling: bool = False, retry_delay: float = 1.0) -> None:
        self.db = db
        self.progress_interval = progress_interval
        self.poll_interval = poll_interval
        self.retry_delay = retry_delay
        self.mode = "polling" if force_polling else "change_stream"
        self.connections: dict[Subscriber, set[str]] = {}  # connection -> the gifts it follows
        self.gifts: dict[str, _Watched] = {}
        self._resume_token: dict | None = None
        self._watcher: asyncio.Task | None = None
        self._ready = asyncio.Event()  # set once the first stream is open (or polling began)
        self._stopping = False
        # The newest result push: {order_id, subscribers, done_at (epoch seconds)} (logged too).
        self.last_result_push: dict | None = None

    # Lifecycle

    def start(self) -> None:
        """Start following the gifts (idempotent; also done by the first subscription)."""
        if self._watcher is None and not self._stopping:
            self._watcher = asyncio.ensure_future(self._watch())

    async def started(self) -> None:
        """Wait until changes are being followed."""
        self.start()
        await self._ready.wait()

    async def stop(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """Stop following and close every connection."""
        self._stopping = True
        tasks = [t for t in [self._watcher, *(w.reader for w in self.gifts.values())] if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for watched in self.gifts.values():
            if watched.progress_timer:
                watched.progress_timer.cancel()
        for connection in list(self.connections):
            connection.close(code, reason)
        self.connections.clear()
        self.gifts.clear()

    # Connections and subscriptions

    def register(self, connection: Subscriber) -> None:
        """A connection opened."""
        self.connections.setdefault(connection, set())

    def leave(self, connection: Subscriber) -> None:
        """A connection closed: forget it and its subscriptions."""
        for order_id in list(self.connections.get(connection, ())):
            self.unsubscribe(connection, order_id)
        self.connections.pop(connection, None)

    def subscriptions(self, connection: Subscriber) -> set[str]:
        """The gifts this connection follows."""
        return self.connections.get(connection, set())

    def subscribe(self, connection: Subscriber, order_id: str, version: int | None = None) -> None:
        """Follow a gift. The connection gets a snapshot of the current state (or, if it says
        which version it has, only what is newer: `opened` if it missed the draw)."""
        self.start()
        watched = self.gifts.get(order_id)
        if watched is None:
            watched = self.gifts[order_id] = _Watched(order_id)
        watched.subs[connection] = -1 if version is None else version
        self.connections.setdefault(connection, set()).add(watched.order_id)
        watched.unsettled.add(connection)
        watched.pending[connection] = "subscribe" if version is None else "resume"
        self._read_soon(watched)

    def unsubscribe(self, connection: Subscriber, order_id: str) -> None:
        """Stop following a gift."""
        watched = self.gifts.get(order_id)
        if watched is None:
            return
        self._drop(watched, connection)
        if not watched.subs:
            self._forget(watched)

    def subscription_count(self) -> int:
        return sum(len(w.subs) for w in self.gifts.values())

    def _forget(self, watched: _Watched) -> None:
        if self.gifts.get(watched.order_id) is watched:
            del self.gifts[watched.order_id]
        if watched.progress_timer:
            watched.progress_timer.cancel()
        if watched.reader and not watched.reader.done() and watched.reader is not asyncio.current_task():
            watched.reader.cancel()

    def _drop(self, watched: _Watched, connection: Subscriber) -> None:
        """A send failed: the connection is gone or was cut; it resubscribes when it returns."""
        watched.subs.pop(connection, None)
        watched.pending.pop(connection, None)
        watched.unsettled.discard(connection)
        self.connections.get(connection, set()).discard(watched.order_id)

    # Changes

    def on_change(self, change: GiftChange) -> None:
        """A gift changed (from the stream, a poll or a resync). Cheap: schedules the work."""
        watched = self.gifts.get(change.order_id)
        if watched is None or change.version <= watched.change_version:
            return
        watched.change_version = change.version
        self._merge_state(watched, change._asdict())
        if change.status == "finished":
            # Unsettled ones too: a read under way may predate the result; they get another.
            for connection, version in watched.subs.items():
                if version < change.version:
                    watched.pending.setdefault(connection, "change")
            self._read_soon(watched)
        else:
            self._progress_soon(watched)

    @staticmethod
    def _merge_state(watched: _Watched, fields: dict) -> None:
        version = fields.get("version") or 0
        if version < watched.state.get("version", 0):
            return
        watched.state.update({k: v for k, v in fields.items()
                              if k in ("version", "status", "joined_count", "open_number") and v is not None})

    def _progress_soon(self, watched: _Watched) -> None:
        if watched.progress_timer is not None:
            return  # coalesced into the one already due
        loop = asyncio.get_running_loop()
        delay = max(0.0, watched.progress_sent_at + self.progress_interval - loop.time())
        watched.progress_timer = loop.call_later(delay, self._send_progress, watched)

    def _send_progress(self, watched: _Watched) -> None:
        watched.progress_timer = None
        watched.progress_sent_at = asyncio.get_running_loop().time()
        state = watched.state
        if "joined_count" not in state:
            return  # not read yet: the pending snapshot carries it
        version = state["version"]
        text = encode({"type": "progress", "order_id": watched.order_id, "version": version,
                       "joined_count": state["joined_count"], "open_number": state.get("open_number"),
                       "status": state.get("status")})
        for connection, has in list(watched.subs.items()):
            if has >= version or connection in watched.unsettled:
                continue
            if connection.send(text):
                watched.subs[connection] = version
            else:
                self._drop(watched, connection)

    # Reading a gift for its subscribers (snapshots and the result)

    def _read_soon(self, watched: _Watched) -> None:
        if watched.reader is None or watched.reader.done():
            watched.reader = asyncio.ensure_future(self._read_loop(watched))

    async def _read_loop(self, watched: _Watched) -> None:
        # One read at a time per gift; whoever subscribes meanwhile is served by the next one,
        # so a thousand subscribes in a burst cost a handful of reads.
        try:
            while watched.pending and self.gifts.get(watched.order_id) is watched:
                pending, watched.pending = watched.pending, {}
                await self._deliver(watched, pending)
        except asyncio.CancelledError:
            raise
        except PyMongoError as exc:
            log.warning("realtime read of gift %s failed (%s); closing its subscribers to resync",
                        watched.order_id, exc)
            self._close_all(watched, 1011, "database unavailable")
        except Exception:
            log.exception("realtime read of gift %s failed", watched.order_id)
            self._close_all(watched, 1011, "internal error")

    def _close_all(self, watched: _Watched, code: int, reason: str) -> None:
        # Closed connections reconnect and resubscribe with their version: nothing is lost.
        for connection in list(watched.subs):
            connection.close(code, reason)
        self._forget(watched)

    async def _deliver(self, watched: _Watched, pending: dict[Any, str]) -> None:
        started = time.time()
        order_id = watched.order_id
        gift = await gift_store.get_gift(self.db, order_id)
        if gift is None or not gift.get("paid"):
            text = encode({"type": "error", "code": "gift_not_found", "message": "礼物不存在",
                           "order_id": order_id})
            for connection in pending:
                connection.send(text)
                self._drop(watched, connection)
            if not watched.subs:
                self._forget(watched)
            return
        self._merge_state(watched, {"version": gift["version"], "status": gift["status"],
                                    "joined_count": gift["joined_count"], "open_number": gift.get("open_number")})
        version, finished = gift["version"], gift["status"] == "finished"
        winners = (gift.get("draw") or {}).get("winners")
        trust_cache = not finished or gift["method"] == "direct" or winners is not None
        members = {c.member_id for c in pending if c.member_id and c.member_id != gift["sender_id"]
                   and not (trust_cache and c.member_id in watched.joins)}
        if members:
            found = await store.joins_of(self.db, order_id, members, gift["joined_count"])
            watched.joins.update(found)
        won = drawn_winners(gift)
        now = clock.utcnow()
        head = (f'"order_id":{encode(order_id)},"version":{version},'
                f'"gift":{encode(public_view(gift))},"me":').encode()
        me_text: dict[str | None, bytes] = {}
        pushed = 0  # `opened` frames sent
        for sent, (connection, why) in enumerate(pending.items(), 1):
            if connection not in watched.subs:
                continue  # left meanwhile
            watched.unsettled.discard(connection)
            if version <= watched.subs[connection]:
                continue  # up to date: nothing to send
            kind = SNAPSHOT if why == "subscribe" or not finished else OPENED
            member_id = connection.member_id
            if member_id not in me_text:
                me_text[member_id] = encode(member_view(gift, watched.joins.get(member_id), member_id or "",
                                                        now, won)).encode()
            if connection.send(kind + head + me_text[member_id] + b"}"):
                watched.subs[connection] = version
                pushed += kind is OPENED
            else:
                self._drop(watched, connection)
            if sent % FANOUT_SLICE == 0:
                await asyncio.sleep(0)  # let the loop flush sockets and serve others
        if pushed:
            self.last_result_push = {"order_id": order_id, "subscribers": pushed, "done_at": time.time()}
            log.info("gift %s: result pushed to %d subscribers in %.0f ms", order_id, pushed,
                     (time.time() - started) * 1000)
        if watched.state.get("version", 0) > version:
            self._progress_soon(watched)  # changed while we read

    # Following the gifts

    async def _watch(self) -> None:
        """Run the change stream (resuming it when lost) or, where unavailable, the poll."""
        while not self._stopping:
            if self.mode == "polling":
                await self._poll()
                return
            try:
                stream = await store.watch_gifts(self.db, self._resume_token)
            except OperationFailure as exc:
                if exc.code in NO_CHANGE_STREAMS or "replica set" in str(exc):
                    log.warning("change streams unavailable (%s); realtime falls back to polling "
                                "every %.1f s", exc, self.poll_interval)
                    self.mode = "polling"
                    continue
                if exc.code in TOKEN_LOST and self._resume_token is not None:
                    log.warning("change stream cannot resume (%s); starting a new one", exc)
                    self._resume_token = None
                    continue
                log.warning("change stream failed to open (%s); retrying", exc)
                await asyncio.sleep(self.retry_delay)
                continue
            except PyMongoError as exc:
                log.warning("change stream failed to open (%s); retrying", exc)
                await asyncio.sleep(self.retry_delay)
                continue
            try:
                async with stream:
                    # Whatever changed before the stream began (or while it was down) is read now.
                    await self._resync()
                    self._ready.set()
                    loop = asyncio.get_running_loop()
                    while stream.alive and not self._stopping:
                        asked = loop.time()
                        event = await stream.try_next()
                        self._resume_token = stream.resume_token
                        if event is not None:
                            self._on_event(event)
                        elif loop.time() - asked < 0.005:
                            await asyncio.sleep(0.02)  # a server that answers getMore without waiting
                if not self._stopping:
                    log.warning("change stream ended; reopening it")
            except PyMongoError as exc:
                if isinstance(exc, OperationFailure) and exc.code in TOKEN_LOST:
                    self._resume_token = None
                log.warning("change stream lost (%s); resuming", exc)
                await asyncio.sleep(self.retry_delay)
            except Exception:
                # A bug must not end realtime for the process: log it, reopen, resync.
                log.exception("change stream handling failed; reopening")
                await asyncio.sleep(self.retry_delay)

    def _on_event(self, event: dict) -> None:
        order_id, fields = store.change_fields(event)
        if order_id in self.gifts and isinstance(fields.get("version"), int):
            self.on_change(GiftChange(order_id, fields["version"], fields.get("status"),
                                      fields.get("joined_count")))

    async def _resync(self) -> None:
        """Read the state of every watched gift and treat what is newer as a change."""
        if not self.gifts:
            return
        for state in await store.gift_states(self.db, list(self.gifts)):
            self.on_change(GiftChange(state["_id"], state["version"], state.get("status"),
                                      state.get("joined_count")))

    async def _poll(self) -> None:
        self._ready.set()
        while not self._stopping:
            started = time.monotonic()
            try:
                await self._resync()
            except PyMongoError as exc:
                log.warning("realtime poll failed (%s); retrying", exc)
            except Exception:
                log.exception("realtime poll failed")
            await asyncio.sleep(max(0.0, self.poll_interval - (time.monotonic() - started)))
