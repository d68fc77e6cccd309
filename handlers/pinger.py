"""Protocol pings for every open websocket from one timer.

Tornado pings each connection from a task of its own (a coroutine and a timer per socket, a
kilobyte or two each at 10,000 sockets). Here one round pings them all every `interval`, and
`timeout` later closes those that have not answered since: the same rule, one timer. A round
pings in slices with turns of the loop between."""
import time
from typing import Protocol

from tornado.ioloop import IOLoop


class Pinged(Protocol):
    ping_sent_at: float  # monotonic time of the last ping sent (0: none yet)
    pong_at: float  # monotonic time of the last pong received

    def ping(self, data: bytes = b"") -> None: ...

    def close(self, code: int | None = None, reason: str | None = None) -> None: ...


SLICE = 500  # pings between turns of the loop


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
        self._ping_slice(list(self.sockets), 0, time.monotonic())

    def _ping_slice(self, sockets: list[Pinged], start: int, sent_at: float) -> None:
        """Ping SLICE of a round's sockets, and queue the next slice behind whatever else waits:
        a ping is a frame written, and 10,000 in one go held the loop for most of a second every
        interval (joins and pushes waited behind it)."""
        for socket in sockets[start:start + SLICE]:
            if socket not in self.sockets:
                continue  # closed since the round began
            socket.ping_sent_at = sent_at
            try:
                socket.ping()
            except Exception:  # closed meanwhile (WebSocketClosedError): it leaves on its own
                self.sockets.discard(socket)
        loop = IOLoop.current()
        if start + SLICE < len(sockets):
            loop.add_callback(self._ping_slice, sockets, start + SLICE, sent_at)
            return
        if self.timeout > 0:  # from the round's last ping: every socket gets the whole timeout
            loop.call_later(self.timeout, self._close_silent, sent_at)
        self._timer = loop.call_later(self.interval, self._ping_all)

    def _close_silent(self, sent_at: float) -> None:
        """Close the sockets that have not answered the ping sent at `sent_at`."""
        for socket in list(self.sockets):
            if socket.ping_sent_at == sent_at and socket.pong_at < sent_at:
                self.sockets.discard(socket)
                socket.close(None, "ping timed out")
