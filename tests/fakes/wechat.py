"""A local stand-in for api.weixin.qq.com that speaks its real endpoints, errors included.

Runs on its own thread and event loop, so in-process apps and server subprocesses alike reach
it over a socket. Behaviour is steered per code or by queueing failures:

- `/sns/jscode2session`: the openid is `o_<code>`; code `bad` -> errcode 40029,
  `busy` -> -1, `http500` -> HTTP 500, `slow` -> answers after `slow_seconds`.
- `fail_next(path, answer)` makes the next call to `path` answer `answer` (a dict, an int
  HTTP status, or "timeout").
"""
import asyncio
import base64
import hashlib
import json
import threading
from collections import defaultdict, deque

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

APPID = "wx_test_appid"
SECRET = "test-app-secret"


def session_key_for(code: str) -> str:
    """The session key the fake hands out for a code (16 bytes, base64, as WeChat does)."""
    return base64.b64encode(hashlib.sha256(b"sk:" + code.encode()).digest()[:16]).decode()


class FakeWeChat:
    """The fake server and what it has seen."""

    def __init__(self) -> None:
        self.calls: dict[str, list[dict]] = defaultdict(list)
        self.queued: dict[str, deque] = defaultdict(deque)
        self.slow_seconds = 6.0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: HTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeWeChat":
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._stop_event.set)
            self._thread.join(10)

    def fail_next(self, path: str, answer: dict | int | str, times: int = 1) -> None:
        for _ in range(times):
            self.queued[path].append(answer)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        app = web.Application(self.routes())
        sockets = bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self._server = HTTPServer(app)
        self._server.add_sockets(sockets)
        self._ready.set()
        await self._stop_event.wait()
        self._server.stop()

    def routes(self) -> list:
        fake = self

        class Endpoint(web.RequestHandler):
            path = ""

            async def prepare(self) -> None:
                fake.calls[self.path].append({"query": {k: self.get_argument(k) for k in self.request.arguments},
                                              "body": self.request.body})
                queue = fake.queued[self.path]
                if queue:
                    answer = queue.popleft()
                    if answer == "timeout":
                        await asyncio.sleep(fake.slow_seconds)
                        answer = {"errcode": 0}
                    if isinstance(answer, int):
                        self.set_status(answer)
                        self.finish("upstream error")
                    else:
                        self.finish(json.dumps(answer))

        class Code2Session(Endpoint):
            path = "/sns/jscode2session"

            async def get(self) -> None:
                if self.get_argument("appid", "") != APPID or self.get_argument("secret", "") != SECRET:
                    self.finish(json.dumps({"errcode": 40013, "errmsg": "invalid appid"}))
                    return
                if self.get_argument("grant_type", "") != "authorization_code":
                    self.finish(json.dumps({"errcode": 40002, "errmsg": "invalid grant_type"}))
                    return
                code = self.get_argument("js_code", "")
                if code == "bad":
                    self.finish(json.dumps({"errcode": 40029, "errmsg": "invalid code"}))
                elif code == "busy":
                    self.finish(json.dumps({"errcode": -1, "errmsg": "system error"}))
                elif code == "http500":
                    self.set_status(500)
                    self.finish("server error")
                else:
                    if code == "slow":
                        await asyncio.sleep(fake.slow_seconds)
                    # WeChat really answers text/plain here.
                    self.set_header("Content-Type", "text/plain")
                    self.finish(json.dumps({"openid": "o_" + code, "session_key": session_key_for(code)}))

        return [(Code2Session.path, Code2Session)]
