"""A websocket client for tests and benchmarks: JSON frames in, JSON frames out."""
import asyncio
import json
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
