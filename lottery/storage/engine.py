"""The embedded MongoDB-wire engine for development, tests and CI.

SecantusDB is GPL-2.0, so it only ever runs as a separate process (`secantusd-py`), never
imported. It advertises itself as a single-node replica set, so change streams work. Its
retryable-write ledger slows every write down over time, hence `retryWrites=false`."""
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from pymongo import MongoClient
from pymongo.errors import PyMongoError

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _binary() -> str:
    beside_python = os.path.join(os.path.dirname(sys.executable), "secantusd-py")
    found = beside_python if os.path.exists(beside_python) else shutil.which("secantusd-py")
    if not found:
        raise RuntimeError("secantusd-py not found: pip install -r requirements.txt")
    return found


class EmbeddedEngine:
    """A `secantusd-py` child process on a free loopback port."""

    def __init__(self, storage_path: str, port: int | None = None) -> None:
        self.storage_path = storage_path
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true&retryWrites=false"

    def start(self, timeout: float = 30.0) -> str:
        """Start the engine, wait until it answers a ping, and return its URI."""
        if self.storage_path != ":memory:":
            os.makedirs(self.storage_path, exist_ok=True)
        command = [_binary(), "--host", "127.0.0.1", "--port", str(self.port),
                   "--storage-path", self.storage_path, "--log-level", "WARNING"]
        # Its own process group, so a Ctrl-C aimed at the server does not kill it first.
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"embedded engine exited with {self.process.returncode}")
            try:
                with MongoClient(self.uri, serverSelectionTimeoutMS=500) as probe:
                    probe.admin.command("ping")
                log.info("embedded MongoDB engine on port %d (data: %s)", self.port, self.storage_path)
                return self.uri
            except PyMongoError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("embedded engine did not answer in time")

    def stop(self) -> None:
        """Ask the engine to shut down cleanly; kill it if it does not."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
