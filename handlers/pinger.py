"""Protocol pings for every open websocket from one timer.

Tornado pings each connection from a task of its own (a coroutine and a timer per socket, a
kilobyte or two each at 10,000 sockets). Here one round pings them all every `interval`, and
`timeout` later closes those that have not answered since: the same rule, one timer."""
import time
from typing import Protocol

from tornado.ioloop import IOLoop


class Pinged(Protocol):
    ping_sent_at: float  # monotonic time of the last ping sent (0: none yet)
    pong_at: float  # monotonic time of the last pong received

    def ping(self, data: bytes = b"") -> None: ...

    def close(self, code: int | None = None, reason: str | None = None) -> None: ...


class Pinger:
    """The open websockets of one process, pinged together."""

    def __init__(self, interval: float, timeout: float) -> None:
        self.interval = interval
        self.timeout = min(timeout, interval)  # as Tornado: never longer than the interval; 0: never closes
        self.sockets: set[Pinged] = set()
        self._timer: object | None = None

    def add(self, socket: Pinged) -> None:
        socket.ping_sent_at = socket.pong_at = 0.0
        self.sockets.add(socket)
        if self._timer is None and self.interval > 0:
            self._timer = IOLoop.current().call_later(self.interval, self._ping_all)

    def discard(self, socket: Pinged) -> None:
        self.sockets.discard(socket)

    def pong(self, socket: Pinged) -> None:
        socket.pong_at = time.monotonic()

    def _ping_all(self) -> None:
        if not self.sockets:
            self._timer = None  # the next socket starts the rounds again
            return
        now = time.monotonic()
        for socket in list(self.sockets):
            socket.ping_sent_at = now
            try:
                socket.ping()
            except Exception:  # closed meanwhile (WebSocketClosedError): it leaves on its own
                self.sockets.discard(socket)
        loop = IOLoop.current()
        if self.timeout > 0:
            loop.call_later(self.timeout, self._close_silent, now)
        self._timer = loop.call_later(self.interval, self._ping_all)

    def _close_silent(self, sent_at: float) -> None:
        """Close the sockets that have not answered the ping sent at `sent_at`."""
        for socket in list(self.sockets):
            if socket.ping_sent_at == sent_at and socket.pong_at < sent_at:
                self.sockets.discard(socket)
                socket.close(None, "ping timed out")
