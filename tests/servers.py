"""Real server processes for tests that need more than one process or a crash."""
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from pymongo import MongoClient, WriteConcern

from lottery.storage.engine import free_port
from tests.api import ADMIN_TOKEN
from fakes.wechat import APPID, SECRET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The suite's workers share two cores with their engines and servers: a storm of hundreds of
# requests queues longer than production's 2.5 s request budget, and the tests prove the rules,
# not the latency. tests/handlers/test_hang.py holds the budget itself.
TEST_REQUEST_TIMEOUT = "60"


def uri_with_db(uri: str, name: str) -> str:
    """`mongodb://host:port/?opts` -> `mongodb://host:port/name?opts`."""
    base, _, query = uri.partition("/?")
    return f"{base}/{name}?{query}"


def write_journaled(uri: str, doc: dict) -> None:
    """Insert `doc` into `test.things` and wait until the engine's journal, with every write
    before it, is on disk (`j: true`). Before a test kills an engine outright: a plain write is
    acknowledged before the engine hands its journal to the OS, a fraction of a second later,
    so a kill right after it may lose it (as `j: false` may on mongod)."""
    with MongoClient(uri) as client:
        client.test.things.with_options(write_concern=WriteConcern(j=True)).insert_one(doc)


class ServerProcess:
    """`python server.py` as a child process on a free port."""

    def __init__(self, mongodb_uri: str, wechat_url: str, *args: str, port: int | None = None,
                 stall: str | None = None) -> None:
        self.port = port or free_port()
        # `stall`: run tests/stalled_server.py instead, whose draws stop at that point.
        entry = ["-m", "tests.stalled_server", stall] if stall else [os.path.join(ROOT, "server.py")]
        self.args = [sys.executable, *entry, f"--port={self.port}", *args]
        # REQUEST_TIMEOUT: see TEST_REQUEST_TIMEOUT (a test of the budget sets its own).
        self.env = {"REQUEST_TIMEOUT": TEST_REQUEST_TIMEOUT, **os.environ, "MONGODB_URI": mongodb_uri, "WECHAT_APPID": APPID,
                    "WECHAT_SECRET": SECRET, "WECHAT_API_BASE": wechat_url, "ADMIN_TOKEN": ADMIN_TOKEN}
        self.process: subprocess.Popen | None = None
        # A file, not a pipe: nobody reads while it runs, and a full pipe would block the server.
        self.log = tempfile.NamedTemporaryFile(prefix="server-", suffix=".log", delete=False)

    def log_text(self) -> str:
        """Everything the process logged so far."""
        with open(self.log.name, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_http: bool = True, timeout: float = 60) -> "ServerProcess":
        self.process = subprocess.Popen(self.args, env=self.env, cwd=ROOT,
                                        stdout=subprocess.DEVNULL, stderr=self.log)
        return self.ready(timeout) if wait_http else self

    def ready(self, timeout: float = 60) -> "ServerProcess":
        """Wait until the started process is ready: /readyz answers 200 (start several, then wait for each)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("server exited: " + self.log_text()[-2000:])
            if " listening on " not in self.log_text():
                # Not bound yet: an answer now could come from another process on this port
                # (chosen free, taken before ours bound it), which ours then fails to bind.
                time.sleep(0.1)
                continue
            try:
                urllib.request.urlopen(self.base_url + "/readyz", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not answer in time")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, as a crash."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
