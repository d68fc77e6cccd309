"""The embedded engine as real processes: one holder per data directory; an engine stops when
the process that started it dies; one left behind anyway is stopped before the next start, and
nothing else ever is; an engine killed outright recovers its journal; a supervised engine that
dies comes back on its port; an engine never takes another process's port for its own."""
import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys

import pytest
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from lottery.storage.data_dir_lock import DataDirInUse, DataDirLock
from lottery.storage import engine as engine_module
from lottery.storage.engine import EmbeddedEngine, PortServedElsewhere, engine_command, engine_uri, free_port
from lottery.storage.engine_process import LINUX, end_engine, is_engine_on
from tests.servers import ROOT, write_journaled
from tests.waiting import until

linux_only = pytest.mark.skipif(not LINUX, reason="parent-death signal and /proc are Linux's")


def answers(uri: str) -> bool:
    try:
        with MongoClient(uri, serverSelectionTimeoutMS=500) as client:
            client.admin.command("ping")
    except PyMongoError:
        return False
    return True


def read(uri: str, doc_id: str) -> dict | None:
    with MongoClient(uri) as client:
        return client.test.things.find_one({"_id": doc_id})


def bare_engine(port: int, data_dir: str) -> subprocess.Popen:
    """An engine that no server started (and that nothing kills when this test process dies)."""
    return subprocess.Popen(engine_command(port, data_dir), stdout=subprocess.DEVNULL, start_new_session=True)


def leave_record_of_a_dead_server(data_dir: str, engine_pid: int, port: int) -> None:
    """What a server killed with SIGKILL leaves: it took the lock, recorded its engine, died."""
    script = ("import sys; from lottery.storage.data_dir_lock import DataDirLock; "
              "lock = DataDirLock(sys.argv[1]); lock.acquire(); lock.write_record(int(sys.argv[2]), int(sys.argv[3]))")
    subprocess.run([sys.executable, "-c", script, data_dir, str(engine_pid), str(port)], cwd=ROOT, check=True)


def ended(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.mark.gen_test(timeout=60)
async def test_a_second_holder_of_a_data_directory_is_refused_and_the_first_engine_keeps_running(tmp_path):
    data_dir = str(tmp_path / "data")
    first = EmbeddedEngine(data_dir)
    first.start()
    try:
        with pytest.raises(DataDirInUse, match=f"data directory in use by process {os.getpid()}"):
            EmbeddedEngine(data_dir).start()
        assert answers(first.uri)
        record = DataDirLock(data_dir).read_record()
        assert (record["engine_pid"], record["port"], record["server_pid"]) == (first.pid, first.port, os.getpid())
    finally:
        first.stop()
    assert DataDirLock(data_dir).read_record() == {}  # a clean stop leaves no record behind


def serving_pid(uri: str) -> int:
    with MongoClient(uri) as client:
        return client.admin.command("serverStatus")["pid"]


def test_an_engine_given_a_port_another_engine_serves_refuses_to_start_rather_than_use_that_database():
    first = EmbeddedEngine(":memory:")
    first.start()
    try:
        second = EmbeddedEngine(":memory:", port=first.port)
        with pytest.raises(PortServedElsewhere, match=f"served by another process \\(pid {first.pid}\\)"):
            second.start()
        assert second.process.poll() is not None  # its own launch did not stay behind
        assert serving_pid(first.uri) == first.pid  # the first carries on
    finally:
        first.stop()


def test_an_engine_whose_chosen_port_was_taken_meanwhile_starts_on_another(monkeypatch):
    first = EmbeddedEngine(":memory:")
    first.start()
    chosen = iter([first.port])  # the race: free when chosen, bound by another before ours binds it
    monkeypatch.setattr(engine_module, "free_port", lambda: next(chosen, None) or free_port())
    second = EmbeddedEngine(":memory:")
    try:
        second.start()
        assert second.port != first.port
        assert serving_pid(second.uri) == second.pid
        assert serving_pid(first.uri) == first.pid
    finally:
        second.stop()
        first.stop()


@linux_only
@pytest.mark.gen_test(timeout=60)
async def test_an_engine_stops_when_the_process_that_started_it_dies(tmp_path):
    data_dir = str(tmp_path / "data")
    starter = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from lottery.storage.engine import EmbeddedEngine; "
                               "engine = EmbeddedEngine(sys.argv[1]); engine.start(); "
                               "print(engine.pid, engine.port, flush=True); time.sleep(600)", data_dir],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        engine_pid, port = map(int, starter.stdout.readline().split())
        write_journaled(engine_uri(port), {"_id": "before"})
        starter.kill()  # SIGKILL: no cleanup of its own
        starter.wait()
        await until(lambda: not is_engine_on(engine_pid, data_dir))
    finally:
        ended(starter)
    again = EmbeddedEngine(data_dir)  # the lock and WiredTiger's are free
    again.start()
    try:
        assert read(again.uri, "before")
    finally:
        again.stop()


@pytest.mark.gen_test(timeout=60)
async def test_an_engine_killed_outright_recovers_its_journaled_writes_at_the_next_start(tmp_path):
    data_dir = str(tmp_path / "data")
    engine = EmbeddedEngine(data_dir)
    engine.start()
    try:
        write_journaled(engine.uri, {"_id": "kept"})
        os.kill(engine.pid, signal.SIGKILL)  # no checkpoint, no clean close: only the journal
    finally:
        engine.stop()
    again = EmbeddedEngine(data_dir)
    again.start()
    try:
        assert read(again.uri, "kept")
    finally:
        again.stop()


@linux_only
@pytest.mark.gen_test(timeout=60)
async def test_an_engine_left_running_by_a_dead_server_is_stopped_cleanly_before_the_next_start(tmp_path):
    data_dir, port = str(tmp_path / "data"), free_port()
    orphan = bare_engine(port, data_dir)
    try:
        await until(lambda: answers(engine_uri(port)))
        with MongoClient(engine_uri(port)) as client:
            client.test.things.insert_one({"_id": "from the earlier run"})
        leave_record_of_a_dead_server(data_dir, orphan.pid, port)
        assert is_engine_on(orphan.pid, data_dir) and not is_engine_on(orphan.pid, str(tmp_path / "other"))
        engine = EmbeddedEngine(data_dir)
        engine.start()
        try:
            assert orphan.wait(timeout=10) == 0  # it got SIGTERM and closed its data: no SIGKILL
            assert read(engine.uri, "from the earlier run")
        finally:
            engine.stop()
    finally:
        ended(orphan)


@linux_only
@pytest.mark.gen_test(timeout=60)
async def test_a_recorded_pid_that_is_not_that_engine_is_never_signalled(tmp_path):
    data_dir = str(tmp_path / "data")
    other_port = free_port()
    bystanders = [subprocess.Popen(["sleep", "600"]),  # the pid reused by an unrelated program
                  bare_engine(other_port, str(tmp_path / "other"))]  # an engine, on other data
    try:
        await until(lambda: answers(engine_uri(other_port)))
        for bystander in bystanders:
            leave_record_of_a_dead_server(data_dir, bystander.pid, other_port)
            engine = EmbeddedEngine(data_dir)
            engine.start()
            engine.stop()
            assert bystander.poll() is None
        assert answers(engine_uri(other_port))
    finally:
        for bystander in bystanders:
            ended(bystander)


@linux_only
@pytest.mark.gen_test(timeout=60)
async def test_an_engine_that_will_not_stop_on_sigterm_is_killed(tmp_path):
    data_dir, port = str(tmp_path / "data"), free_port()
    stuck = bare_engine(port, data_dir)
    try:
        await until(lambda: answers(engine_uri(port)))
        os.kill(stuck.pid, signal.SIGSTOP)  # it cannot act on SIGTERM now
        assert end_engine(stuck.pid, data_dir, timeout=1)
        assert stuck.wait(timeout=10) == -signal.SIGKILL
    finally:
        ended(stuck)


@pytest.mark.gen_test(timeout=90)
async def test_a_supervised_engine_that_dies_comes_back_on_its_port_with_its_data_and_one_warning(
        tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="lottery.storage.engine")
    data_dir = str(tmp_path / "data")
    engine = EmbeddedEngine(data_dir, max_restart_delay=1.0)
    engine.start()
    supervision = asyncio.create_task(engine.supervise())
    try:
        write_journaled(engine.uri, {"_id": "kept"})
        first_pid = engine.pid
        os.kill(first_pid, signal.SIGKILL)
        engine.process.wait()
        # Its port is taken for a while (nothing awaited since the kill, so the supervisor has not
        # run yet): the first attempts fail, and are retried without another warning.
        with socket.create_server(("127.0.0.1", engine.port)):
            await until(lambda: caplog.text.count("restart 2 failed"))
        await until(lambda: "embedded engine back" in caplog.text)
        assert engine.pid != first_pid and read(engine.uri, "kept")
        assert DataDirLock(data_dir).read_record()["engine_pid"] == engine.pid
        engine_records = [r for r in caplog.records if r.name == "lottery.storage.engine"]
        assert len([r for r in engine_records if r.levelno == logging.WARNING]) == 1
        assert len([r for r in engine_records if "back on port" in r.getMessage()]) == 1
    finally:
        engine.stop()
    await until(supervision.done)  # stop() ends the supervision, then the engine
    assert engine.process.poll() is not None
