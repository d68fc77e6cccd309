"""The engine as an operating-system process: making it stop when its server dies, and
recognising (and ending) an engine that outlived the server that started it.

Linux gives both: a parent-death signal, and `/proc/<pid>/cmdline` to tell an engine from an
unrelated process that reused its pid. Elsewhere there is no guard, and a leftover engine is
never recognised, so never signalled."""
import ctypes
import os
import signal
import sys
import time

LINUX = sys.platform.startswith("linux")
ENGINE_NAME = "secantusd-py"
PR_SET_PDEATHSIG = 1
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def guard_command(engine_pid: int, storage_path: str) -> list[str] | None:
    """The command of a guard for the engine `engine_pid`, to start from this (the server's)
    process, on the thread that lives as long as it: the main thread. None where there are no
    parent-death signals.

    The guard is a small process of its own that gets SIGTERM from the kernel when the server
    dies, however it dies, and passes exactly one SIGTERM on to the engine, which then closes
    its data cleanly. The engine does not get a parent-death signal itself: the kernel sends it
    again each time the child passes to another of the dying server's threads, and a second
    SIGTERM during secantusd-py's shutdown can deadlock it (seen about once in twenty kills)."""
    if not LINUX:
        return None
    bootstrap = (f"import sys; sys.path.insert(0, {ROOT!r}); "
                 "from lottery.storage.engine_process import guard; guard(*sys.argv[1:])")
    return [sys.executable, "-I", "-S", "-c", bootstrap, str(os.getpid()), str(engine_pid), storage_path]


def guard(server_pid: str, engine_pid: str, storage_path: str) -> None:
    """What the guard process does: wait for the server to die, then SIGTERM its engine once."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # received by sigwait only
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == int(server_pid):  # otherwise the server died before the signal was set
        signal.sigwait({signal.SIGTERM})
    _signal_engine(int(engine_pid), storage_path, signal.SIGTERM)


def _arguments(pid: int) -> list[str]:
    """The process's command line, or [] when it is gone, a zombie, or not ours to read."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _storage_path(pid: int, arguments: list[str]) -> str | None:
    """The `--storage-path` an engine process was given, made absolute (against its own cwd),
    or `:memory:`."""
    for index, argument in enumerate(arguments):
        if argument.startswith("--storage-path="):
            path = argument.partition("=")[2]
        elif argument == "--storage-path" and index + 1 < len(arguments):
            path = arguments[index + 1]
        else:
            continue
        if path == ":memory:":
            return path
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            return None
        return os.path.realpath(os.path.join(cwd, path))
    return None


def is_engine_on(pid: int, storage_path: str) -> bool:
    """True when `pid` is a live engine process running on `storage_path` (or `:memory:`).
    Checked on the command line, never on the pid alone: a pid from a record may since belong
    to anyone."""
    if pid <= 0 or not LINUX:
        return False
    arguments = _arguments(pid)
    if not any(os.path.basename(argument) == ENGINE_NAME for argument in arguments[:3]):
        return False
    wanted = storage_path if storage_path == ":memory:" else os.path.realpath(storage_path)
    return _storage_path(pid, arguments) == wanted


def _signal_engine(pid: int, storage_path: str, sig: signal.Signals) -> None:
    """Send `sig` to `pid` only if it is still that engine (checked right before)."""
    if is_engine_on(pid, storage_path):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _gone(pid: int, storage_path: str, timeout: float) -> bool:
    """Wait until `pid` is no longer that engine (exited: its files, WiredTiger's lock among
    them, are released). Not our child, so it is watched in /proc rather than waited for."""
    deadline = time.monotonic() + timeout
    while is_engine_on(pid, storage_path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def end_engine(pid: int, storage_path: str, timeout: float = 10.0, signalled: bool = False) -> bool:
    """Stop the engine `pid` running on `storage_path`: SIGTERM and wait for it to exit (it
    checkpoints and closes its data), SIGKILL only if it will not (its journal recovers the
    data at the next start). `signalled`: it already had its SIGTERM (from its guard) and is
    shutting down, so it is only waited for: a second SIGTERM in the middle of its shutdown can
    hang it. Returns False, touching nothing, if `pid` is not that engine."""
    if not is_engine_on(pid, storage_path):
        return False
    if not signalled:
        _signal_engine(pid, storage_path, signal.SIGTERM)
    if not _gone(pid, storage_path, timeout):
        _signal_engine(pid, storage_path, signal.SIGKILL)
        _gone(pid, storage_path, timeout)
    return True
