"""Subscriptions by gift, and the fan-out of each change to a gift's watchers.

The gift document is the durable record: its `version` grows on every change and a draw marks
it `finished` in the same update that commits its winners (`draw.winners`). So the hub needs no
message log. For every change of a gift somebody watches (from `feed.GiftFeed`):

- `progress` (joined count, status): coalesced to one frame per gift per `progress_interval`;
- `finished`: one read of the gift and of the watchers' joins (two queries whatever the number of
  watchers), then each watcher gets `opened` with their own `me`. A drawn gift's watchers who
  joined have theirs made while the draw waits for its beacon round (`losing`): at the result
  only the winners' are left to make.

A subscriber says which version it has; it gets what is newer, never anything older, so a client
that reconnects with its version gets exactly what it missed. Transport-agnostic: a subscriber
is anything with `member_id`, `send(text) -> bool` and `close(code, reason)` (handlers/realtime.py
adapts a websocket)."""
import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

import pymongo
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from lottery import clock, metrics
from lottery.background import Loop
from lottery.backoff import database_away
from lottery.admission import is_live
from lottery.gifts import drawn_winners, member_view, public_view
from lottery.live import frames
from lottery.live.feed import GiftChange, GiftFeed
from lottery.storage import gifts, joins

log = logging.getLogger(__name__)

FANOUT_SLICE = 500  # sends between yields to the event loop
NONE = -1  # the version of a subscriber that has nothing yet
CLOSE_TRY_AGAIN = 1013  # the websocket code for "try again later"
LAST_JOIN_TRIES, LAST_JOIN_PAUSE = 40, 0.05  # how long a direct gift's last joiner's record is awaited



class Subscriber(Protocol):
    """One live connection."""

    member_id: str | None

    def send(self, text: str | bytes) -> bool:
        """Queue a text frame (str, or UTF-8 bytes) without waiting; False if the connection is
        gone (or was cut)."""

    def close(self, code: int, reason: str) -> None:
        """Close the connection."""


@dataclass
class WatchedGift:
    """One gift with subscribers in this process."""

    order_id: str
    subs: dict[Subscriber, int] = field(default_factory=dict)  # subscriber -> the version it has
    unsettled: set[Subscriber] = field(default_factory=set)  # first answer not yet settled
    # subscribers waiting for a read of the gift -> why ("subscribe", "resume", "change")
    pending: dict[Subscriber, str] = field(default_factory=dict)
    change_version: int = 0  # newest version seen from the feed
    # Join records of subscribed members, read once: a join never goes away, and the draw's
    # outcome comes from the finished gift's `draw.winners`, so the result needs no join reads.
    joins: dict[str, dict] = field(default_factory=dict)
    state: dict = field(default_factory=dict)  # newest known {version, status, joined_count, open_number}
    reader: asyncio.Task | None = None
    progress_timer: asyncio.TimerHandle | None = None
    progress_task: asyncio.Task | None = None  # a progress frame's fan-out under way
    progress_sent_at: float = 0.0
    basics: dict | None = None  # the fields of the gift a member's view reads that never change
    # member id -> their `me` if they did not win, made while a drawn gift waits for its beacon
    # round, and the cached join it was made from (two dicts, not a tuple each: ten thousand
    # lasting containers would bring the garbage collector's next pass closer)
    losing: dict[str, bytes] = field(default_factory=dict)
    losing_from: dict[str, dict] = field(default_factory=dict)
    losing_task: asyncio.Task | None = None

    def drop(self, connection: Subscriber) -> None:
        self.subs.pop(connection, None)
        self.pending.pop(connection, None)
        self.unsettled.discard(connection)

    def merge_state(self, fields: dict) -> None:
        """Keep the newest of what the feed and the reads saw."""
        if (fields.get("version") or 0) < self.state.get("version", 0):
            return
        self.state.update({k: v for k, v in fields.items()
                           if k in ("version", "status", "joined_count", "open_number", "freeze") and v is not None})


class LiveHub:
    """Subscriptions by gift and their fan-out; owns the process's feed of gift changes."""

    def __init__(self, db: AsyncDatabase, progress_interval: float = 0.25, poll_interval: float = 0.5,
                 force_polling: bool = False, retry_delay: float = 1.0, read_timeout: float = 2.5) -> None:
        self.db = db
        self.read_timeout = read_timeout  # a subscriber's first answer waits no longer on a hung database
        self.progress_interval = progress_interval
        # connection -> the gifts it follows: a tuple (at most 20; a set would be 216 bytes a
        # connection, 1.5 % of what one costs)
        self.connections: dict[Subscriber, tuple[str, ...]] = {}
        self.gifts: dict[str, WatchedGift] = {}
        self.feed = GiftFeed(db, lambda: self.gifts.keys(), force_polling, poll_interval, retry_delay,
                             on_outage=self.close_for_outage)
        # A bug must not end realtime for the process: the loop logs it, then follows again (a resync).
        # No round timeout: the round is the change stream itself, followed for as long as it lasts.
        self.follower = Loop("following gift changes", self._follow, retry_delay, timeout=None)
        self._stopping = False
        # The process's hub (one per process) reports to the gauges when scraped: a count kept on
        # the side could drift from the truth.
        metrics.WS_CONNECTIONS.set_function(lambda: len(self.connections))
        metrics.WS_SUBSCRIPTIONS.set_function(self.subscription_count)

    @property
    def mode(self) -> str:
        """"change_stream" or "polling"."""
        return self.feed.mode

    # Lifecycle

    def start(self) -> None:
        """Start following the gifts (idempotent; also done by the first subscription)."""
        if not self._stopping:
            self.follower.start()

    async def started(self) -> None:
        """Wait until changes are being followed."""
        self.start()
        await self.feed.ready.wait()

    async def stop(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """Stop following and close every connection."""
        self._stopping = True
        await self.follower.stop()
        tasks = [t for w in self.gifts.values() for t in (w.reader, w.progress_task, w.losing_task) if t]
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

    async def _follow(self) -> None:
        async for change in self.feed.changes():
            self.on_change(change)

    # Connections and subscriptions

    def register(self, connection: Subscriber) -> None:
        """A connection opened."""
        self.connections.setdefault(connection, ())

    def leave(self, connection: Subscriber) -> None:
        """A connection closed: forget it and its subscriptions."""
        for order_id in list(self.connections.get(connection, ())):
            self.unsubscribe(connection, order_id)
        self.connections.pop(connection, None)

    def subscriptions(self, connection: Subscriber) -> set[str]:
        """The gifts this connection follows."""
        return set(self.connections.get(connection, ()))

    def subscription_count(self) -> int:
        return sum(len(w.subs) for w in self.gifts.values())

    def subscribe(self, connection: Subscriber, order_id: str, version: int | None = None) -> None:
        """Follow a gift. The connection gets a snapshot of the current state (or, if it says
        which version it has, only what is newer: `opened` if it missed the draw)."""
        self.start()
        watched = self.gifts.get(order_id)
        if watched is None:
            watched = self.gifts[order_id] = WatchedGift(order_id)
        watched.subs[connection] = NONE if version is None else version
        following = self.connections.get(connection, ())
        if order_id not in following:
            self.connections[connection] = following + (order_id,)
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

    def _drop(self, watched: WatchedGift, connection: Subscriber) -> None:
        """Forget a subscription (a failed send: the connection is gone or was cut; it
        resubscribes when it returns)."""
        watched.drop(connection)
        following = self.connections.get(connection)
        if following is not None and watched.order_id in following:
            self.connections[connection] = tuple(o for o in following if o != watched.order_id)

    def _forget(self, watched: WatchedGift) -> None:
        if self.gifts.get(watched.order_id) is watched:
            del self.gifts[watched.order_id]
        if watched.progress_timer:
            watched.progress_timer.cancel()
        for task in (watched.reader, watched.progress_task, watched.losing_task):
            if task and not task.done() and task is not asyncio.current_task():
                task.cancel()

    # Changes

    def on_change(self, change: GiftChange) -> None:
        """A gift changed (from the feed). Cheap: schedules the work."""
        watched = self.gifts.get(change.order_id)
        if watched is None or change.version <= watched.change_version:
            return
        watched.change_version = change.version
        watched.merge_state(change._asdict())
        if change.freeze is not None and change.status != "finished":
            self._make_losing_soon(watched)  # frozen: the beacon round comes a second or more later
        if change.status == "finished":
            # Unsettled ones too: a read under way may predate the result; they get another.
            for connection, version in watched.subs.items():
                if version < change.version:
                    watched.pending.setdefault(connection, "change")
            self._read_soon(watched)
        else:
            self._progress_soon(watched)

    def _progress_soon(self, watched: WatchedGift) -> None:
        if watched.progress_timer is not None or watched.progress_task is not None:
            return  # coalesced into the one already due (or sent after the one under way)
        loop = asyncio.get_running_loop()
        delay = max(0.0, watched.progress_sent_at + self.progress_interval - loop.time())
        watched.progress_timer = loop.call_later(delay, self._start_progress, watched)

    def _start_progress(self, watched: WatchedGift) -> None:
        watched.progress_timer = None
        watched.progress_task = asyncio.ensure_future(self._send_progress(watched))

    async def _send_progress(self, watched: WatchedGift) -> None:
        """One progress frame to every subscriber behind, FANOUT_SLICE at a time with a turn of
        the loop between (10,000 watchers are most of a second of sends: joins and the draw go
        on meanwhile). The result supersedes it: once the gift is finished the rest get
        `opened` from the read under way instead."""
        try:
            watched.progress_sent_at = asyncio.get_running_loop().time()
            if "joined_count" not in watched.state:
                return  # not read yet: the pending snapshot carries it
            if watched.state.get("status") == "finished":
                # The result goes out as `opened`, from the read under way; a progress frame at
                # its version would count as sent and the result would never be.
                return
            version = watched.state["version"]
            text = frames.progress(watched.order_id, watched.state)
            sent = 0
            for count, connection in enumerate(list(watched.subs), 1):
                if count % FANOUT_SLICE == 0:
                    await asyncio.sleep(0)
                    if watched.state.get("status") == "finished":
                        break
                has = watched.subs.get(connection)  # checked as sent: a newer frame may have gone meanwhile
                if has is None or has >= version or connection in watched.unsettled:
                    continue
                if connection.send(text):
                    watched.subs[connection] = version
                    sent += 1
                else:
                    self._drop(watched, connection)
            metrics.WS_FRAMES_SENT.labels("progress").inc(sent)
        except Exception:  # a bug must not leave the gift without progress for good
            log.exception("progress fan-out of gift %s failed", watched.order_id)
            return
        finally:
            watched.progress_task = None
        if watched.state.get("version", 0) > version and self.gifts.get(watched.order_id) is watched:
            self._progress_soon(watched)  # changed while this one went out

    def _make_losing_soon(self, watched: WatchedGift) -> None:
        if watched.basics is None or watched.basics["method"] == "direct" or watched.losing_task is not None:
            return
        watched.losing_task = asyncio.ensure_future(self._make_losing(watched))

    async def _make_losing(self, watched: WatchedGift) -> None:
        """Each watching joiner's `me` as the result will show it if they did not win, made from
        `member_view` with no winners while the draw waits for its round, FANOUT_SLICE at a
        time; the result uses them (about 4 of the 10 us a watcher costs it,
        docs/benchmarks.md) and makes the rest, the winners' included."""
        unwon = {**watched.basics, "status": "finished", "draw": {"winners": []}}
        now = clock.utcnow()  # (a joiner's view does not read it)
        losing, made_from = watched.losing, watched.losing_from = {}, {}  # (the result's fan-out lets go of them)
        try:
            for count, (member_id, join) in enumerate(list(watched.joins.items()), 1):
                if count % FANOUT_SLICE == 0:
                    await asyncio.sleep(0)
                    if watched.state.get("status") == "finished":
                        return  # the result is going out: it makes the rest
                losing[member_id] = frames.encode(member_view(unwon, join, member_id, now, {}))
                made_from[member_id] = join
        except Exception:  # the result makes them instead
            log.exception("views of gift %s's watchers before its result failed", watched.order_id)

    @staticmethod
    def _made_losing(watched: WatchedGift, member_id: str | None, won: dict[str, int]) -> bytes | None:
        """This watcher's `me` made before the result, if it did not win and its join is the
        one it was made from."""
        if member_id in won or watched.losing_from.get(member_id) is not watched.joins.get(member_id, False):
            return None
        return watched.losing.get(member_id)

    # Reading a gift for its subscribers (snapshots and the result)

    def _read_soon(self, watched: WatchedGift) -> None:
        if watched.reader is None or watched.reader.done():
            watched.reader = asyncio.ensure_future(self._read_loop(watched))

    async def _read_loop(self, watched: WatchedGift) -> None:
        # One read at a time per gift; whoever subscribes meanwhile is served by the next one,
        # so a thousand subscribes in a burst cost a handful of reads.
        try:
            while watched.pending and self.gifts.get(watched.order_id) is watched:
                pending, watched.pending = watched.pending, {}
                with pymongo.timeout(self.read_timeout):
                    gift = await self._read(watched, pending)
                if gift is None:
                    self._refuse_unknown(watched, pending)
                else:
                    await self._fan_out(watched, pending, gift)
        except asyncio.CancelledError:
            raise
        except PyMongoError as exc:
            log.warning("realtime read of gift %s failed (%s); closing its subscribers to resync",
                        watched.order_id, type(exc).__name__)
            self._close_all(watched, CLOSE_TRY_AGAIN if database_away(exc) else 1011, "database unavailable")
        except Exception:
            log.exception("realtime read of gift %s failed", watched.order_id)
            self._close_all(watched, 1011, "internal error")

    async def _read(self, watched: WatchedGift, pending: dict[Subscriber, str]) -> dict | None:
        """The gift, and the joins of pending members not read before; None if unknown."""
        gift = await gifts.get(self.db, watched.order_id)
        if not is_live(gift):
            return None
        watched.basics = {"_id": gift["_id"], "sender_id": gift["sender_id"], "method": gift["method"]}
        watched.merge_state({"version": gift["version"], "status": gift["status"],
                             "joined_count": gift["joined_count"], "open_number": gift.get("open_number")})
        # Before a timed or full gift's result is committed its joins cannot say who won, so
        # cached joins serve; a finished gift without `draw.winners` is read afresh.
        trust_cache = gift["status"] != "finished" or gift["method"] == "direct" or "draw" in gift
        members = {c.member_id for c in pending if c.member_id and c.member_id != gift["sender_id"]
                   and not (trust_cache and c.member_id in watched.joins)}
        if members:
            watched.joins.update(await joins.of_members(self.db, watched.order_id, members, gift["joined_count"]))
            if gift["method"] == "direct" and gift["status"] == "finished":
                await self._await_last_joins(watched, members - watched.joins.keys(), gift["joined_count"])
        return gift

    async def _await_last_joins(self, watched: WatchedGift, missing: set[str], joined_count: int) -> None:
        """The claim of a direct gift's last item finishes it, and the joiner's record is the
        next write: a member who holds an item but has no record yet gets it read again
        briefly, so their result does not say they never joined."""
        holders = [m for m in missing if await gifts.is_claimant(self.db, watched.order_id, m)]
        for _ in range(LAST_JOIN_TRIES):
            if not holders:
                return
            await asyncio.sleep(LAST_JOIN_PAUSE)
            found = await joins.of_members(self.db, watched.order_id, holders, joined_count)
            watched.joins.update(found)
            holders = [m for m in holders if m not in found]
        log.warning("gift %s: %d item holders still without a join record", watched.order_id, len(holders))

    def _refuse_unknown(self, watched: WatchedGift, pending: dict[Subscriber, str]) -> None:
        text = frames.error("gift_not_found", "礼物不存在", order_id=watched.order_id)
        for connection in pending:
            connection.send(text)
            self._drop(watched, connection)
        metrics.WS_FRAMES_SENT.labels("error").inc(len(pending))
        if not watched.subs:
            self._forget(watched)

    async def _fan_out(self, watched: WatchedGift, pending: dict[Subscriber, str], gift: dict) -> None:
        """Each pending subscriber behind this version gets its frame, encoded once per state."""
        version, finished = gift["version"], gift["status"] == "finished"
        head = frames.gift_head(watched.order_id, version, public_view(gift))
        won, now = drawn_winners(gift), clock.utcnow()
        me_frames: dict[str | None, bytes] = {}
        pushed = snapshots = 0  # `opened` and `snapshot` frames sent
        started = time.monotonic()
        for sent, (connection, why) in enumerate(pending.items(), 1):
            if connection not in watched.subs:
                continue  # left meanwhile
            watched.unsettled.discard(connection)
            if version <= watched.subs[connection]:
                continue  # up to date: nothing to send
            kind = frames.SNAPSHOT if why == "subscribe" or not finished else frames.OPENED
            member_id = connection.member_id
            if member_id not in me_frames:
                me_frames[member_id] = (finished and self._made_losing(watched, member_id, won)) or frames.encode(
                    member_view(gift, watched.joins.get(member_id), member_id or "", now, won))
            if connection.send(frames.gift_frame(kind, head, me_frames[member_id])):
                watched.subs[connection] = version
                pushed += kind is frames.OPENED
                snapshots += kind is frames.SNAPSHOT
            else:
                self._drop(watched, connection)
            if sent % FANOUT_SLICE == 0:
                await asyncio.sleep(0)  # let the loop flush sockets and serve others
        metrics.WS_FRAMES_SENT.labels("snapshot").inc(snapshots)
        metrics.WS_FRAMES_SENT.labels("opened").inc(pushed)
        if pushed:
            writing = time.monotonic() - started
            since_commit = time.time() - clock.as_utc(gift["opened_at"]).timestamp() if gift.get("opened_at") else 0.0
            metrics.RESULT_PUSH_SECONDS.observe(max(0.0, since_commit))
            metrics.RESULT_FANOUT_SECONDS.observe(writing)
            log.info("gift %s: result pushed to %d subscribers in %.0f ms, %.0f ms after the commit",
                     watched.order_id, pushed, writing * 1000, since_commit * 1000)
        if finished:
            watched.losing, watched.losing_from = {}, {}  # used: later subscribers get theirs made as they come
        if watched.state.get("version", 0) > version:
            self._progress_soon(watched)  # changed while we read

    def close_for_outage(self) -> None:
        """The database is away: every connection is closed with 1013 (try again later), so
        clients reconnect with their versions once it is back, and miss nothing."""
        if not self.connections:
            return
        log.warning("database unreachable: closing %d websocket connections (1013)", len(self.connections))
        for connection in list(self.connections):
            connection.close(CLOSE_TRY_AGAIN, "database unavailable; reconnect")
        for watched in list(self.gifts.values()):
            self._forget(watched)
        self.connections.clear()

    def _close_all(self, watched: WatchedGift, code: int, reason: str) -> None:
        # Closed connections reconnect and resubscribe with their version: nothing is lost.
        for connection in list(watched.subs):
            connection.close(code, reason)
        self._forget(watched)
