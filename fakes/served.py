"""What every stand-in shares: its HTTP server on a loopback port of its own, run on a thread
with its own event loop, so a test or a benchmark on another loop (or none) can use it."""
import asyncio
import threading

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets


class ServedFake:
    """start() serves `routes()` on 127.0.0.1 (the port in `self.port`); stop() ends it.
    Subclasses may do more on their loop before serving (`on_start`) and after (`on_stop`)."""

    name = "fake"

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        self._server: HTTPServer | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=self.name)

    def routes(self) -> list:
        raise NotImplementedError

    async def on_start(self) -> None:
        """On the fake's loop, before it serves."""

    async def on_stop(self) -> None:
        """On the fake's loop, once it no longer accepts connections."""

    def start(self):
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{self.name} did not start")
        return self

    def stop(self) -> None:
        if self.loop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop_event.set)
            self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        await self.on_start()
        # No access log: query strings carry access tokens, even fake ones.
        app = web.Application(self.routes(), log_function=lambda handler: None)
        sockets = bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self._server = HTTPServer(app)
        self._server.add_sockets(sockets)
        self._ready.set()
        await self._stop_event.wait()
        self._server.stop()
        await self.on_stop()
