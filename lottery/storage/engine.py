"""The embedded MongoDB-wire engine for development, tests and CI.

SecantusDB is GPL-2.0, so it only ever runs as a separate process (`secantusd-py`), never
imported. It advertises itself as a single-node replica set, so change streams work. Its
retryable-write ledger slows every write down over time, hence `retryWrites=false`.

On a data directory the server holds the directory's lock for its lifetime and records its
engine there (data_dir_lock.py). On Linux a guard process stops the engine when the server
dies, and an engine left running by a server that died anyway is stopped before a new one
starts (engine_process.py). While the server runs, `supervise()` starts the engine again
whenever it dies."""
import asyncio
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from lottery.storage.data_dir_lock import DataDirLock
from lottery.storage.engine_process import end_engine, guard_command

log = logging.getLogger(__name__)

IN_MEMORY = ":memory:"
PROBE_MS = 500  # how long one ping waits for the engine
START_SECONDS = 30.0  # a launch that does not answer a ping by then has failed
STOP_SECONDS = 10.0  # a clean stop (a checkpoint) gets this long before SIGKILL
# An engine left running by a server that died has had its SIGTERM since then (from its guard),
# and a clean stop takes ~2.5 s. One still running 5 s on is stuck (secantusd-py's shutdown
# rarely hangs): it is killed, its journal recovers the data, and the restart stays short.
LEFTOVER_SECONDS = 5.0
PORT_ATTEMPTS = 3  # launches on fresh ports when a chosen one turns out taken


# Listening ports come from below Linux's ephemeral range (32768-60999): a port the kernel hands
# out for bind(0) is also handed to the next outgoing connection, so between choosing it and the
# engine (or a test's server) binding it, a client could take it ("Address already in use").
LISTEN_PORTS = range(20000, 32000)
# Its own generator: a seeded `random` (a property-based test's) would give processes starting
# together the same ports.
_PORTS = random.SystemRandom()


def free_port() -> int:
    """A TCP port nobody listens on right now, outside the range outgoing connections use."""
    for _ in range(200):
        port = _PORTS.choice(LISTEN_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {LISTEN_PORTS.start}-{LISTEN_PORTS.stop - 1}")


def _binary() -> str:
    beside_python = os.path.join(os.path.dirname(sys.executable), "secantusd-py")
    found = beside_python if os.path.exists(beside_python) else shutil.which("secantusd-py")
    if not found:
        raise RuntimeError("secantusd-py not found: pip install -r requirements.txt")
    return found


def engine_command(port: int, storage_path: str) -> list[str]:
    """The engine's command line: loopback only, data in `storage_path` (or `:memory:`)."""
    return [_binary(), "--host", "127.0.0.1", "--port", str(port), "--storage-path", storage_path,
            "--log-level", "WARNING"]


def engine_uri(port: int) -> str:
    """How to reach the engine on `port`."""
    return f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"


class EngineFailed(RuntimeError):
    """The engine exited or did not answer while starting."""


class PortServedElsewhere(EngineFailed):
    """Another process answers on the engine's port: ours could not bind it."""


class EmbeddedEngine:
    """A `secantusd-py` child process on a loopback port, on a data directory or in memory
    (`:memory:`: no lock, no record, nothing kept).

    `start()` launches it, `supervise()` (a task on the server's event loop) keeps it running,
    `stop()` ends both. Start it, and run `supervise()`, on the main thread: on Linux each
    engine has a guard process that stops it when the thread that launched it ends."""

    def __init__(self, storage_path: str, port: int | None = None, restart_delay: float = 0.5,
                 max_restart_delay: float = 10.0, check_interval: float = 0.5) -> None:
        in_memory = storage_path == IN_MEMORY
        self.storage_path = storage_path if in_memory else os.path.realpath(storage_path)
        self.port = port or free_port()
        self.port_chosen = port is None  # another may be chosen if this one turns out taken
        self.restart_delay = restart_delay
        self.max_restart_delay = max_restart_delay
        self.check_interval = check_interval
        self.process: subprocess.Popen | None = None
        self._guard: subprocess.Popen | None = None  # stops the engine if the server dies
        self.lock = None if in_memory else DataDirLock(self.storage_path)
        self._stopping = False
        self._supervisor: asyncio.Task | None = None

    @property
    def uri(self) -> str:
        return engine_uri(self.port)

    @property
    def pid(self) -> int | None:
        """The running engine's process id."""
        return self.process.pid if self.process is not None else None

    def start(self, timeout: float = START_SECONDS) -> str:
        """Start the engine, wait until it answers a ping, and return its URI. On a data
        directory, first take its lock (DataDirInUse if a live server holds it) and stop the
        engine an earlier run of the directory left behind, if it still runs."""
        self._stopping = False
        previous = self.lock.acquire() if self.lock is not None else {}
        try:
            self._end_leftover(previous)
            for attempt in range(PORT_ATTEMPTS):
                self._launch()
                try:
                    self._wait_until_answering(timeout)
                    break
                except PortServedElsewhere:
                    if not self.port_chosen or attempt == PORT_ATTEMPTS - 1:
                        raise
                    # Chosen free, then taken by another process before ours bound it.
                    self._kill()
                    self.port = free_port()
        except BaseException:
            self.stop()
            raise
        self._record()
        log.info("embedded MongoDB engine on port %d (data: %s)", self.port, self.storage_path)
        return self.uri

    async def supervise(self) -> None:
        """Keep the engine running until `stop()`: when it dies (killed, crashed), start it again
        on the same port and data, first after `restart_delay`, then doubling up to
        `max_restart_delay` while attempts fail. One warning per incident, one info line when
        it is back. Run as a task on the main thread's loop (restarts launch from there)."""
        self._supervisor = asyncio.current_task()
        while not self._stopping:
            await asyncio.sleep(self.check_interval)
            if self._stopping or self.process is None or self.process.poll() is None:
                continue
            log.warning("embedded engine (pid %d) exited with %s; restarting it on port %d",
                        self.process.pid, self.process.returncode, self.port)
            await self._restart()

    def stop(self) -> None:
        """End supervision, then ask the engine to shut down cleanly (kill it if it does not),
        and release the data directory. Call it on the loop's thread, or after the loop ended."""
        self._stopping = True
        if self._supervisor is not None and not self._supervisor.done():
            self._supervisor.cancel()
        self._end_guard()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.lock is not None:
            self.lock.release()

    def _end_leftover(self, previous: dict) -> None:
        """Stop the engine the previous run recorded, if that very engine still runs: its server
        died without stopping it, and it holds WiredTiger's lock on the data."""
        engine_pid = previous.get("engine_pid")
        if not isinstance(engine_pid, int):
            return
        signalled = previous.get("dies_with_server") is True  # its guard sent SIGTERM as the server died
        if end_engine(engine_pid, self.storage_path, LEFTOVER_SECONDS, signalled):
            log.warning("the embedded engine (pid %d) of an earlier server (pid %s) still ran on %s: "
                        "stopped it first", engine_pid, previous.get("server_pid"), self.storage_path)

    def _launch(self) -> None:
        # Its own session, so a Ctrl-C aimed at the server's process group does not stop it
        # while the server still uses it; the server stops it last.
        self.process = subprocess.Popen(engine_command(self.port, self.storage_path),
                                        stdout=subprocess.DEVNULL, start_new_session=True)
        self._end_guard()
        guard = guard_command(self.process.pid, self.storage_path)
        if guard is not None:
            self._guard = subprocess.Popen(guard, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                           start_new_session=True)

    def _end_guard(self) -> None:
        """SIGKILL the guard: it only acts on SIGTERM, and the server is alive to stop the engine."""
        if self._guard is not None and self._guard.poll() is None:
            self._guard.kill()
            self._guard.wait()
        self._guard = None

    def _record(self) -> None:
        if self.lock is not None:
            self.lock.write_record(engine_pid=self.process.pid, port=self.port,
                                   dies_with_server=self._guard is not None)

    def _answers(self) -> bool:
        """True when our engine answers; EngineFailed if it exited, PortServedElsewhere if
        another process answers on its port (a server would otherwise use that database)."""
        if self.process.poll() is not None:
            raise EngineFailed(f"embedded engine exited with {self.process.returncode}")
        try:
            with MongoClient(self.uri, serverSelectionTimeoutMS=PROBE_MS) as probe:
                serving = probe.admin.command("serverStatus").get("pid")
        except PyMongoError:
            return False
        if serving != self.process.pid:
            raise PortServedElsewhere(f"port {self.port} is served by another process (pid {serving})")
        return True

    def _wait_until_answering(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._answers():
            if time.monotonic() > deadline:
                raise EngineFailed("embedded engine did not answer in time")
            time.sleep(0.2)

    async def _restart(self) -> None:
        """Launch the engine again until it answers; the loop keeps serving meanwhile."""
        loop = asyncio.get_running_loop()
        delay, attempts = self.restart_delay, 0
        while not self._stopping:
            await asyncio.sleep(delay)
            attempts += 1
            try:
                self._launch()  # on the loop's thread: see the class docstring
                deadline = loop.time() + START_SECONDS
                while not await asyncio.to_thread(self._answers):
                    if loop.time() > deadline:
                        raise EngineFailed("embedded engine did not answer in time")
                    await asyncio.sleep(0.2)
            except (EngineFailed, OSError) as exc:
                self._kill()
                delay = min(delay * 2, self.max_restart_delay)
                log.debug("embedded engine restart %d failed (%s); next attempt in %.1f s", attempts, exc, delay)
                continue
            self._record()
            log.info("embedded engine back on port %d (pid %d) after %d attempt(s)",
                     self.port, self.process.pid, attempts)
            return

    def _kill(self) -> None:
        """End a launch that failed."""
        self._end_guard()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
