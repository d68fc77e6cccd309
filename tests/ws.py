"""A websocket client for tests and benchmarks: JSON frames in, JSON frames out."""
import asyncio
import json
import random
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect


class WsClient:
    """One connection to `/ws`; keeps every frame it received, in order."""

    def __init__(self, connection: WebSocketClientConnection) -> None:
        self.connection = connection
        self.received: list[dict] = []
        self._read = 0  # frames already handed out by next()

    @classmethod
    async def connect(cls, base_url: str, login_key: str | None = None, query: str | None = None,
                      headers: dict | None = None) -> "WsClient":
        url = base_url.replace("http://", "ws://").rstrip("/") + "/ws"
        if query is not None:
            url += "?" + query
        elif login_key is not None:
            url += "?login_key=" + login_key
        connection = await websocket_connect(HTTPRequest(url, headers=headers or {}, connect_timeout=20,
                                                         request_timeout=20))
        return cls(connection)

    def send(self, frame: Any) -> None:
        self.connection.write_message(frame if isinstance(frame, (str, bytes)) else json.dumps(frame),
                                      binary=isinstance(frame, bytes))

    async def next(self, *types: str, timeout: float = 20.0) -> dict:
        """The next frame (of these types, skipping others); AssertionError on close or timeout."""
        while True:
            while self._read < len(self.received):
                frame = self.received[self._read]
                self._read += 1
                if not types or frame.get("type") in types:
                    return frame
            text = await asyncio.wait_for(self.connection.read_message(), timeout)
            if text is None:
                raise AssertionError(f"closed ({self.close_code}) while waiting for {types}")
            self.received.append(json.loads(text))

    async def closed(self, timeout: float = 20.0) -> int | None:
        """Read until the server closes; its close code."""
        async def drain() -> None:
            while (text := await self.connection.read_message()) is not None:
                self.received.append(json.loads(text))
        await asyncio.wait_for(drain(), timeout)
        return self.close_code

    @property
    def close_code(self) -> int | None:
        return self.connection.close_code

    def close(self) -> None:
        self.connection.close()


class LiveClient:
    """A waiting page's connection as static/js/gift-socket.js keeps it: after any close but
    4401 it reconnects with exponential backoff and equal jitter (0.5 s doubling to 30 s),
    authenticates (an `auth` frame, or the key in the URL as the mini-program does),
    resubscribes to each gift with the newest version it has, and drops frames older than that.

    `results[order_id]` is the frame that showed the gift's result (`opened`, or a snapshot of a
    finished gift); `opened[order_id]` counts `opened` frames. Clearing `may_connect` holds
    reconnects back (a test's gap); every frame kept goes to `received`."""

    def __init__(self, base_url: str, login_key: str, key_in_url: bool = False,
                 min_delay: float = 0.5, max_delay: float = 30.0) -> None:
        self.url = base_url.replace("http://", "ws://").rstrip("/") + "/ws"
        self.login_key = login_key
        self.key_in_url = key_in_url
        self.min_delay, self.max_delay = min_delay, max_delay
        self.gifts: dict[str, int] = {}  # order id -> newest version seen (0: none yet)
        self.received: list[dict] = []
        self.results: dict[str, dict] = {}
        self.opened: dict[str, int] = {}
        self.connects = 0  # connections made
        self.drops = 0  # connections lost
        self.may_connect = asyncio.Event()
        self.may_connect.set()
        self.connection: WebSocketClientConnection | None = None
        self.stopped = False
        self._task: asyncio.Task | None = None

    def start(self) -> "LiveClient":
        self._task = asyncio.ensure_future(self._run())
        return self

    @property
    def connected(self) -> bool:
        return self.connection is not None

    def subscribe(self, order_id: str, version: int = 0) -> None:
        self.gifts[order_id] = max(self.gifts.get(order_id, 0), version)
        self._send(self._subscription(order_id))

    async def close(self) -> None:
        self.stopped = True
        if self.connection is not None:
            self.connection.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _subscription(self, order_id: str) -> dict:
        version = self.gifts.get(order_id)
        frame = {"type": "subscribe", "order_id": order_id}
        return {**frame, "version": version} if version else frame

    def _send(self, frame: dict) -> None:
        if self.connection is not None:
            self.connection.write_message(json.dumps(frame))

    async def _run(self) -> None:
        attempt = 0
        while not self.stopped:
            await self.may_connect.wait()
            url = self.url + (f"?login_key={self.login_key}" if self.key_in_url else "")
            try:
                connection = await websocket_connect(HTTPRequest(url, connect_timeout=10, request_timeout=10))
            except Exception:  # refused, reset, a 502 from the proxy: all mean "try again later"
                connection = None
            if connection is not None:
                self.connection = connection
                self.connects += 1
                if not self.key_in_url:
                    self._send({"type": "auth", "login_key": self.login_key})
                for order_id in self.gifts:
                    self._send(self._subscription(order_id))
                while (text := await connection.read_message()) is not None:
                    if self._receive(json.loads(text)):
                        attempt = 0  # a working connection: the next outage starts afresh
                self.connection = None
                self.drops += 1
                if connection.close_code == 4401:
                    return
            attempt += 1
            ceiling = min(self.max_delay, self.min_delay * 2 ** min(attempt - 1, 10))
            await asyncio.sleep(ceiling / 2 + random.random() * ceiling / 2)

    def _receive(self, frame: dict) -> bool:
        """Keep a gift frame unless it is older than what this client has; True if kept."""
        order_id = frame.get("order_id")
        if frame.get("type") not in ("snapshot", "progress", "opened") or order_id not in self.gifts:
            if frame.get("type") == "error":
                self.received.append(frame)
            return False
        known = self.gifts[order_id]
        if frame["version"] < known or (frame["version"] == known and frame["type"] == "progress"):
            return False
        self.gifts[order_id] = frame["version"]
        self.received.append(frame)
        if frame["type"] == "opened":
            self.opened[order_id] = self.opened.get(order_id, 0) + 1
        if frame["type"] in ("snapshot", "opened") and frame["gift"]["status"] == "finished":
            self.results.setdefault(order_id, frame)
        return True
