"""The realtime channel: `/ws`, JSON text frames, the protocol in docs/realtime.md.

The handler is the websocket end of a `lottery.live.LiveHub` subscriber: it authenticates the
connection, turns frames into hub calls and hub messages into frames. It never waits for one
client's write: `send` queues the frame and counts the bytes still pending, and cuts a client
whose backlog passes the cap (it reconnects and resyncs with its version)."""
import logging
import struct
import time
from asyncio import Future
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Iterator
from urllib.parse import urlparse

import pymongo
from pymongo.errors import PyMongoError
from tornado import websocket
from tornado.httputil import HTTPHeaders
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError

from handlers import params
from handlers.base import DEFAULT_REQUEST_TIMEOUT, CommonHandler
from handlers.pinger import Pinger
from handlers.services import ServiceAccess
from lottery import logs, metrics
from lottery.backoff import database_away
from lottery.live.hub import CLOSE_TRY_AGAIN
from lottery.errors import InvalidInput, LoginExpired, LotteryError
from lottery.live import frames
from lottery.validate import ID_PATTERN

log = logging.getLogger("gift_lottery.realtime")

# Application close codes (docs/realtime.md). 4401: do not reconnect with the same key.
CLOSE_BAD_KEY = 4401
CLOSE_AUTH_TIMEOUT = 4408
CLOSE_BACKLOG = 4429
CLOSE_FLOOD = 4420


def empty_headers(headers: HTTPHeaders) -> None:
    """Empty these headers and give back the memory they held: `clear()` removes the names one by
    one, which leaves each of the dicts inside its full-size table (about 1 KB a connection for
    the upgrade's two sets), so the dicts are then cleared themselves."""
    headers.clear()
    for table in vars(headers).values():
        if isinstance(table, dict):
            table.clear()


class LazyDeque:
    """A deque made only while something is queued. An IOStream keeps two deques for its writes
    (the buffers and their futures), and an empty deque already holds a block of 64 slots, about
    760 bytes: for a socket that is written straight (write_text_frame) they stay empty but for
    a slow client's backlog, and 50,000 idle sockets would hold 76 MB of empty blocks. What
    IOStream asks of them, nothing more."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: deque | None = None

    def append(self, item: Any) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)

    def popleft(self) -> Any:
        if self._items is None:
            raise IndexError("pop from an empty deque")
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    def clear(self) -> None:
        self._items = None

    def __getitem__(self, index: int) -> Any:
        if self._items is None:
            raise IndexError("deque index out of range")
        return self._items[index]

    def __len__(self) -> int:
        return 0 if self._items is None else len(self._items)

    def __iter__(self) -> Iterator:
        return iter(()) if self._items is None else iter(self._items)


def lighten_stream(stream: IOStream) -> None:
    """Give a plain IOStream's empty write queues back (LazyDeque); a queue in use is kept."""
    if type(stream) is not IOStream:
        return
    if not stream._write_futures:
        stream._write_futures = LazyDeque()
    buffer = stream._write_buffer
    if buffer is not None and not buffer._buffers:
        buffer._buffers = LazyDeque()


@dataclass
class RealtimeOptions:
    """Limits of the websocket channel; server.py fills them from its options."""

    max_message_size: int = 4096  # bytes per incoming frame; larger closes with 1009
    max_subscriptions: int = 20  # gifts per connection
    max_pending_bytes: int = 1024 * 1024  # outgoing backlog per connection before it is cut
    auth_timeout: float = 10.0  # seconds to send `auth` when the URL had no login key
    # Incoming frames: a burst of this many, refilled at this rate; beyond it the connection is
    # closed (a page sends a handful: auth, its subscriptions, a ping every 20 s).
    message_burst: int = 60
    messages_per_second: float = 10.0
    # Browser origins allowed besides the server's own host; "*" allows any. Clients that send
    # no Origin (the mini-program, native apps) are not checked.
    allowed_origins: list[str] = field(default_factory=list)


class RealtimeHandler(CommonHandler, ServiceAccess, websocket.WebSocketHandler):
    """One websocket connection: a member's live view of the gifts it subscribes to (the hub's
    Subscriber)."""

    counted = False  # long-lived: a shutdown closes it with 1001 rather than waiting for it

    member_id: str | None = None
    # Set again in open(); here too, since on_close() may run for a request never upgraded.
    closing = False
    pending_bytes = 0
    auth_timer: object = None

    @property
    def limits(self) -> RealtimeOptions:
        """This channel's limits. (Not `options`: that is the handler's OPTIONS method.)"""
        return self.settings["realtime"]

    # Protocol pings come from the process's one Pinger (handlers/pinger.py), not a task per
    # connection: Tornado's own are off.
    ping_interval = 0
    ping_sent_at = 0.0
    pong_at = 0.0

    @property
    def pinger(self) -> Pinger:
        return self.settings["pinger"]

    def on_pong(self, data: bytes) -> None:
        self.pinger.pong(self)

    @property
    def max_message_size(self) -> int:
        return self.limits.max_message_size

    def check_origin(self, origin: str) -> bool:
        """The server's own host always; others when configured."""
        allowed = self.limits.allowed_origins
        if "*" in allowed or origin.lower().rstrip("/") in (o.lower().rstrip("/") for o in allowed):
            return True
        return urlparse(origin).netloc.lower() == self.request.host.lower()

    async def open(self) -> None:
        """Register with the hub; authenticate from `?login_key=` or wait for `auth`."""
        self.pending_bytes = 0
        self.closing = False
        self.allowance = float(self.limits.message_burst)
        self.allowance_at = time.monotonic()
        self.auth_timer = None
        if not self.health.database_available:
            self.close(CLOSE_TRY_AGAIN, "database unavailable; reconnect")  # back with its versions later
            return
        self.hub.register(self)
        self.pinger.add(self)
        # The upgrade's request and response headers are done with: held for the connection's
        # life they were the largest thing it kept (tracemalloc, bench/ws_fanout.py). Emptied in
        # place: Tornado's handshake coroutine, which runs the whole connection, holds them too.
        # The stream's write queues are empty deques for most of a socket's life: made lazy.
        empty_headers(self.request.headers)
        empty_headers(self._headers)
        lighten_stream(self.ws_connection.stream)
        # Templates are never rendered here: let the UI namespaces go now rather than at the
        # close, as Tornado does for a websocket (they hold closures over the handler).
        self.ui = None
        login_key = self.get_query_argument("login_key", None)
        if login_key:
            await self.authenticate(login_key)
        else:
            self.auth_timer = IOLoop.current().call_later(self.limits.auth_timeout, self._auth_expired)

    def on_close(self) -> None:
        """Leave the hub (every subscription goes with it)."""
        self.closing = True
        if self.auth_timer is not None:
            IOLoop.current().remove_timeout(self.auth_timer)
        self.pinger.discard(self)
        self.hub.leave(self)

    async def on_message(self, message: str | bytes) -> None:
        """One client frame. Mistakes answer an `error` frame; the connection stays."""
        if not self._within_rate():
            if not self.closing:
                log.warning("websocket closed: over %d frames in a burst", self.limits.message_burst)
                self.close(CLOSE_FLOOD, "too many messages")
            return
        if isinstance(message, bytes):
            self.send_error_frame("bad_message", "只接受 JSON 文本消息")
            return
        try:
            frame = params.json_document(message, "消息")
        except InvalidInput as exc:
            self.send_error_frame("bad_message", exc.message)
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            self.send_error_frame("bad_message", "消息必须是带 type 的 JSON 对象")
            return
        action = {"auth": self.on_auth, "subscribe": self.on_subscribe,
                  "unsubscribe": self.on_unsubscribe, "ping": self.on_ping}.get(frame["type"])
        if action is None:
            self.send_error_frame("unknown_type", f"未知的消息类型：{frame['type'][:32]}")
            return
        try:
            await action(frame)
        except LotteryError as exc:
            self.send_error_frame(exc.code, exc.message, **_order_of(frame))

    def _within_rate(self) -> bool:
        """A token bucket over incoming frames."""
        now = time.monotonic()
        self.allowance = min(float(self.limits.message_burst),
                             self.allowance + (now - self.allowance_at) * self.limits.messages_per_second)
        self.allowance_at = now
        if self.allowance < 1:
            return False
        self.allowance -= 1
        return True

    # Client messages

    async def on_auth(self, frame: dict) -> None:
        """`{type: auth, login_key}`."""
        login_key = frame.get("login_key")
        if not isinstance(login_key, str) or not login_key or len(login_key) > 256:
            login_key = None
        await self.authenticate(login_key)

    async def on_subscribe(self, frame: dict) -> None:
        """`{type: subscribe, order_id, version?}`: a snapshot (or what is newer than version)."""
        order_id = params.identifier(frame, "order_id")
        version = frame.get("version")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 0):
            self.send_error_frame("invalid_input", "version 必须是非负整数", order_id=order_id)
            return
        if self.member_id is None:
            self.send_error_frame("not_authenticated", "请先发送 auth 消息", order_id=order_id)
            return
        following = self.hub.subscriptions(self)
        if order_id not in following and len(following) >= self.limits.max_subscriptions:
            self.send_error_frame("too_many_subscriptions",
                            f"每个连接最多订阅 {self.limits.max_subscriptions} 个礼物", order_id=order_id)
            return
        self.hub.subscribe(self, order_id, version)

    async def on_unsubscribe(self, frame: dict) -> None:
        """`{type: unsubscribe, order_id}`."""
        self.hub.unsubscribe(self, params.identifier(frame, "order_id"))

    async def on_ping(self, frame: dict) -> None:
        """`{type: ping}` -> `{type: pong}`, for clients that cannot see protocol pings."""
        self.send(frames.encode({"type": "pong"}))

    async def authenticate(self, login_key: str | None) -> None:
        """Resolve the login key; an unknown or expired one closes the connection (4401)."""
        if self.auth_timer is not None:  # the key came in time; the database's answer may not
            IOLoop.current().remove_timeout(self.auth_timer)
            self.auth_timer = None
        try:
            with pymongo.timeout(self.settings.get("request_timeout", DEFAULT_REQUEST_TIMEOUT)):
                member_id = await self.accounts.authenticate(login_key)
        except LoginExpired as exc:
            log.warning("websocket closed: login key unknown or expired")
            self.send_error_frame(exc.code, exc.message)
            self.close(CLOSE_BAD_KEY, "login key unknown or expired")
            return
        except PyMongoError as exc:
            if database_away(exc):
                log.warning("websocket authentication: database unavailable (%s)", type(exc).__name__)
                self.close(CLOSE_TRY_AGAIN, "database unavailable; reconnect")
            else:
                log.exception("websocket authentication failed")
                self.close(1011, "database unavailable")
            return
        if self.member_id is not None and member_id != self.member_id:
            # Subscriptions were answered for the first member; a second identity starts over.
            self.send_error_frame("already_authenticated", "连接已登录为其他用户")
            return
        self.member_id = member_id
        logs.MEMBER_ID.set(member_id)

    def _auth_expired(self) -> None:
        self.auth_timer = None
        if self.member_id is None:
            self.close(CLOSE_AUTH_TIMEOUT, "no auth message in time")

    # Outgoing frames (also the hub's Subscriber interface)

    def send(self, text: str | bytes) -> bool:
        """Queue a text frame (str, or UTF-8 bytes) without waiting for it to be written. False
        when the connection is closed, or was just cut because its backlog passed the cap."""
        if self.closing or self.ws_connection is None or self.ws_connection.is_closing():
            return False
        data = text.encode() if isinstance(text, str) else text
        size = len(data)
        if self.pending_bytes + size > self.limits.max_pending_bytes:
            log.warning("websocket cut: %d bytes pending (cap %d)", self.pending_bytes,
                        self.limits.max_pending_bytes)
            metrics.WS_SEND_DROPS.inc()
            self.close(CLOSE_BACKLOG, "too much pending output; reconnect with your versions")
            self.closing = True
            return False
        try:
            written = self._write_text_frame(data)
        except (websocket.WebSocketClosedError, StreamClosedError):
            self.closing = True
            return False
        if written is not None and self.ws_connection.stream.writing():
            # Only what waits for the socket counts against the cap (and costs a callback).
            self.pending_bytes += size
            written.add_done_callback(partial(self._written, size))
        return True

    def _write_text_frame(self, data: bytes) -> Future | None:
        """One text frame (see write_text_frame). Compression is never negotiated here (the
        handler offers none); should it ever be, the usual path."""
        protocol = self.ws_connection
        if protocol._compressor is not None:
            return self.write_message(data)
        return write_text_frame(protocol.stream, data)

    def _written(self, size: int, future: Any) -> None:
        self.pending_bytes -= size
        if future.exception() is not None:  # closed under us: on_close cleans up
            self.closing = True

    def send_error_frame(self, code: str, message: str, **extra: Any) -> None:
        """An `error` frame: `{type: error, code, message, ...}`. (Not `send_error`: that is
        Tornado's, for HTTP answers before the upgrade.)"""
        self.send(frames.error(code, message, **extra))

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close (idempotent)."""
        self.closing = True
        super().close(code, reason)


def text_frame(data: bytes) -> bytes:
    """A final, unmasked text frame carrying `data` (RFC 6455, 5.2), as a server sends it."""
    size = len(data)
    if size < 126:
        return struct.pack("!BB", 0x81, size) + data
    if size <= 0xFFFF:
        return struct.pack("!BBH", 0x81, 126, size) + data
    return struct.pack("!BBQ", 0x81, 127, size) + data


def write_text_frame(stream: IOStream, data: bytes) -> Future | None:
    """Write one text frame to a websocket's stream. When nothing is queued before it (most
    watchers, most of the time) it goes to the socket at once: one system call without the
    stream's future and callbacks (half of a result's cost per watcher at fan-out,
    docs/benchmarks.md). What the socket does not take, the stream writes after, in order, and
    meets a failing socket's error as usual. None if the socket took it all."""
    frame = text_frame(data)
    taken = 0
    # Plain sockets only (TLS ends at the proxy); a closed stream's write raises as usual.
    if type(stream) is IOStream and not stream.writing() and not stream.closed():
        try:
            taken = stream.socket.send(frame)
        except OSError:  # full (it is non-blocking) or failing: the stream takes over
            taken = 0
        if taken == len(frame):
            return None
    return stream.write(frame[taken:])


def _order_of(frame: dict) -> dict:
    order_id = frame.get("order_id")
    return {"order_id": order_id} if isinstance(order_id, str) and ID_PATTERN.match(order_id) else {}


default_handlers = [
    (r"/ws", RealtimeHandler),
]
