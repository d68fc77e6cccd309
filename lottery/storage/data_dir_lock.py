"""One server per embedded-engine data directory, and a record of the engine it runs.

The truth is an exclusive `flock` on `server.lock`, held by the server for its lifetime: the
kernel drops it when the server dies, however it dies (SIGKILL too), so a held lock means a
live server. Beside it, `engine.json` records the run (server pid, engine pid and port, whether
the engine dies with the server, data directory, start time): a second server names the first
from it, and a server that finds the lock free but the record's engine still running knows that
engine outlived its server."""
import fcntl
import json
import os
from datetime import datetime, timezone

LOCK_FILE = "server.lock"
RECORD_FILE = "engine.json"


class DataDirInUse(RuntimeError):
    """Another live server holds the data directory."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DataDirLock:
    """This server's hold on a data directory and its engine record."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = os.path.realpath(data_dir)
        self._lock_fd: int | None = None
        self._started_at = ""

    @property
    def record_path(self) -> str:
        return os.path.join(self.data_dir, RECORD_FILE)

    def read_record(self) -> dict:
        """The last run's record, or {} when there is none (or it cannot be read)."""
        try:
            with open(self.record_path, encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def acquire(self) -> dict:
        """Take the lock and return the previous run's record ({} if none); DataDirInUse when
        a live server holds it. The record then names this server, with no engine yet."""
        os.makedirs(self.data_dir, exist_ok=True)
        fd = os.open(os.path.join(self.data_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = self.read_record().get("server_pid")
            # The holder writes its pid right after taking the lock; a record from before that
            # names a dead server, not the holder.
            who = f"process {holder}" if isinstance(holder, int) and _alive(holder) else "another process"
            raise DataDirInUse(f"data directory in use by {who} ({self.data_dir}): another server "
                               "runs on it; stop that one first, or give this one its own --data_dir") from None
        self._lock_fd = fd
        previous = self.read_record()
        self._started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.write_record(engine_pid=None, port=None)
        return previous

    def write_record(self, engine_pid: int | None, port: int | None, dies_with_server: bool = False) -> None:
        """Record this server's engine (after each start), atomically. `dies_with_server`: the
        engine gets SIGTERM from the kernel when the server dies."""
        record = {"server_pid": os.getpid(), "engine_pid": engine_pid, "port": port,
                  "dies_with_server": dies_with_server, "data_dir": self.data_dir,
                  "started_at": self._started_at}
        temporary = self.record_path + ".tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
        os.replace(temporary, self.record_path)

    def release(self) -> None:
        """After a clean stop: drop the record and the lock. The lock file stays: removing it
        could let two servers lock two different files of the same name."""
        if self._lock_fd is None:
            return
        try:
            os.remove(self.record_path)
        except FileNotFoundError:
            pass
        os.close(self._lock_fd)  # closing the only descriptor releases the flock
        self._lock_fd = None
