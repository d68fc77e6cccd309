"""`python server.py`: its options, and the embedded engine it starts and stops by itself, comes
back to after a crash, keeps to itself, and restarts when it dies."""
import ipaddress
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Callable

import pytest

from lottery import clock
from lottery.storage.data_dir_lock import DataDirLock
from lottery.storage.engine import engine_uri, free_port
from lottery.storage.engine_process import is_engine_on
from tests.api import ADMIN_TOKEN
from tests.servers import ROOT, ServerProcess, uri_with_db, write_journaled
from tests.waiting import wait_until

NO_WECHAT = "http://127.0.0.1:9"


def run_server(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(ROOT, "server.py"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=30, env={**os.environ, **(env or {})})


def processes_mentioning(text: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(cmdline)
    return found


def call(url: str, body: dict | None = None, token: str = "") -> tuple[int, dict]:
    """One JSON request (a POST with a body, else a GET): the status and the answer, errors too.
    These tests are synchronous: the browser tests leave the session's thread in a running
    event loop, so a test here cannot run one."""
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_help_lists_every_setting_with_its_environment_name_and_never_a_secret():
    result = run_server("--help", env={"WECHAT_SECRET": "s3cr3t-value", "ADMIN_TOKEN": "adm1n-value"})
    assert result.returncode == 0
    text = result.stdout + result.stderr
    ours = text[text.index("gift lottery server options:"):]
    names = re.findall(r"^  --([a-z0-9-]+)", ours, re.MULTILINE)
    assert len(names) >= 20
    flat = " ".join(ours.split())
    for name in names:
        env = name.replace("-", "_").upper()
        assert f"(env {env})" in flat, name
    assert "s3cr3t-value" not in text and "adm1n-value" not in text


def test_an_option_set_only_in_the_environment_takes_effect(tmp_path):
    port = free_port()
    server = ServerProcess("", NO_WECHAT, f"--data_dir={tmp_path / 'data'}")
    server.args.remove(f"--port={server.port}")
    server.port, server.env["PORT"] = port, str(port)
    server.start(timeout=60)
    try:
        assert call(server.base_url + "/healthz")[0] == 200
    finally:
        server.stop()


def test_a_malformed_environment_value_is_a_clear_error():
    for env, words in (({"NOTIFY_RATE": "fast"}, "NOTIFY_RATE"), ({"DEV": "maybe"}, "DEV")):
        result = run_server(env=env)
        assert result.returncode != 0 and words in result.stderr and "Traceback" not in result.stderr


def test_a_malformed_option_is_a_clear_error_not_a_traceback():
    for args, words in ((["--port=eighty"], "port"), (["--port"], "requires a value"), (["--colour=red"], "colour")):
        result = run_server(*args)
        assert result.returncode != 0 and words in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_options_take_their_value_as_the_next_word_too(tmp_path):
    server = ServerProcess("", NO_WECHAT)
    server.args[server.args.index(f"--port={server.port}")] = "--port"
    server.args += [str(server.port), "--data_dir", str(tmp_path / "data"), "--dev"]
    server.start(timeout=60)
    try:
        assert call(server.base_url + "/api/site")[1]["dev"] is True  # a flag stays a flag
    finally:
        server.stop()


def test_without_mongodb_uri_it_runs_its_own_engine_and_keeps_the_data_across_restarts(tmp_path):
    data_dir = str(tmp_path / "data")
    first = ServerProcess("", NO_WECHAT, f"--data_dir={data_dir}").start(timeout=60)
    try:
        assert [p for p in processes_mentioning(data_dir) if "server.py" not in p]  # its engine runs
        status, created = call(first.base_url + "/api/admin/gifts",
                               {"sender_openid": "o_sender", "method": "direct", "items": [{"name": "茶"}]},
                               token=ADMIN_TOKEN)
        assert status == 201
    finally:
        first.process.send_signal(signal.SIGINT)
        first.process.wait(30)
    assert first.process.returncode == 0
    assert [p for p in processes_mentioning(data_dir) if "server.py" not in p] == []  # engine stopped too

    second = ServerProcess("", NO_WECHAT, f"--data_dir={data_dir}").start(timeout=60)
    try:
        status, winners = call(f"{second.base_url}/api/v1/gifts/{created['order_id']}/winners")
        assert status == 200 and winners["order_id"] == created["order_id"]
    finally:
        second.stop()
    assert second.process.returncode == 0
    assert processes_mentioning(data_dir) == []


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        with open(table) as handle:
            for row in handle.read().splitlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                address, _, port_hex = local.partition(":")
                if state == "0A" and int(port_hex, 16) == port:
                    # /proc prints each 32-bit word in host (little-endian) order.
                    words = [bytes.fromhex(address[i:i + 8])[::-1] for i in range(0, width, 8)]
                    raw = b"".join(words)
                    found.add(ipaddress.ip_address(raw).compressed)
    return found


def listening_line(server: ServerProcess) -> str:
    return next(line for line in server.log_text().splitlines() if "listening on" in line)


@pytest.mark.parametrize("args, addresses, logged", [
    (["--dev"], {"127.0.0.1"}, "http://127.0.0.1:"),
    (["--address=127.0.0.1"], {"127.0.0.1"}, "http://127.0.0.1:"),
    ([], {"0.0.0.0", "::"}, "http://0.0.0.0:"),
])
def test_it_listens_where_told_loopback_in_development_and_logs_what_it_bound(engine_uri, args, addresses, logged):
    server = ServerProcess(uri_with_db(engine_uri, "t_listen"), NO_WECHAT, *args).start()
    try:
        bound = listening_addresses(server.port)
        assert bound and bound <= addresses, bound
        line = listening_line(server)
        assert f"{logged}{server.port}" in line, line
        for address in bound:
            assert (f"[{address}]" if ":" in address else address) in line
        if "--dev" in args:
            assert "0.0.0.0" not in line and "[::]" not in line
    finally:
        server.stop()


# Starts the server with an open-files limit: `soft, hard` (None: the hard limit as it is).
OPEN_FILES = ("import os, resource, sys; soft, hard = {}, {}; "
              "resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard or resource.getrlimit(resource.RLIMIT_NOFILE)[1])); "
              "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")


def test_a_server_started_under_a_low_open_files_limit_lifts_it_and_holds_more_connections(engine_uri):
    server = ServerProcess(uri_with_db(engine_uri, "t_nofile"), NO_WECHAT)
    server.args = [sys.executable, "-c", OPEN_FILES.format(200, None), *server.args[1:]]  # as a shell's low default
    server.start()
    held = []
    try:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        assert f"open files: at most {hard}" in listening_line(server)
        for _ in range(400):  # each held open by the server at once, twice its starting limit
            held.append(socket.create_connection(("127.0.0.1", server.port), timeout=15))
        for connection in held:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        for connection in held:
            assert connection.recv(64).startswith(b"HTTP/1.1 200"), "a connection got no answer"
    finally:
        for connection in held:
            connection.close()
        server.stop()


def answers(url: str) -> bool:
    try:
        return call(url)[0] == 200
    except OSError:  # not accepted yet, or cut
        return False


def test_a_server_out_of_descriptors_pauses_accepting_with_a_warning_and_serves_again_once_they_are_free(engine_uri):
    server = ServerProcess(uri_with_db(engine_uri, "t_emfile"), NO_WECHAT, "--address=127.0.0.1")
    server.args = [sys.executable, "-c", OPEN_FILES.format(100, 100), *server.args[1:]]  # no room to lift
    server.start()
    held = []
    try:
        # More than it may open: it accepts until it is out of descriptors, the rest wait in its
        # listen queue, and it stays there a while.
        for _ in range(150):
            held.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        wait_until(lambda: "accepting paused" in server.log_text(), timeout=10)
        time.sleep(1.5)
        for connection in held:
            connection.close()
        held = []
        # Descriptors free again: a new connection is accepted and answered.
        wait_until(lambda: answers(server.base_url + "/healthz"), timeout=15)
        log = server.log_text()
        pauses = log.count("accepting paused")
        # A warning a pause, never a failure logged on every turn of the loop.
        assert 1 <= pauses <= 10 and log.count("Too many open files") == pauses, log[-3000:]
    finally:
        for connection in held:
            connection.close()
        server.stop()


def test_development_mode_refuses_an_address_other_than_loopback():
    for address in ("0.0.0.0", "::", "192.0.2.10", "example.com"):
        result = run_server("--dev", f"--address={address}")
        assert result.returncode != 0 and "loopback" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
# Crashes. The promise: a server killed outright is serving again within 10 s of its
# restart on the same data directory. That is a figure, printed here, not asserted: on a machine
# loaded by the rest of the suite the engine's journal recovery alone has taken longer.
RESTART_LIMIT_SECONDS = 60
OPEN_AHEAD = timedelta(seconds=6)  # time to create, join and kill before the timed gift is due


def embedded_server(data_dir: str, wechat_url: str = NO_WECHAT) -> ServerProcess:
    return ServerProcess("", wechat_url, f"--data_dir={data_dir}")


def engine_pid(data_dir: str) -> int:
    return DataDirLock(data_dir).read_record()["engine_pid"]


def create_gift(server: ServerProcess, **fields) -> str:
    status, created = call(server.base_url + "/api/admin/gifts",
                           {"sender_openid": "o_sender", "items": [{"name": "茶"}], **fields}, token=ADMIN_TOKEN)
    assert status == 201, created
    return created["order_id"]


def legacy(server: ServerProcess, path: str, body: dict) -> dict:
    status, answer = call(server.base_url + path, body)
    assert status == 200, answer
    return answer


def gifts_joined_before_a_crash(server: ServerProcess) -> dict:
    """A direct gift alice has won, and a timed gift due shortly that alice and bob joined."""
    direct = create_gift(server, method="direct")
    open_at = clock.utcnow() + OPEN_AHEAD
    timed = create_gift(server, method="timed", open_at=open_at.isoformat())
    keys = {}
    for name in ("alice", "bob"):
        keys[name] = legacy(server, "/api/member/code/login", {"code": name})["data"]["login_key"]
        joined = legacy(server, "/api/sharagift/JoinGift", {"login_key": keys[name], "order_id": timed})
        assert joined["code"] == "success", joined
    won = legacy(server, "/api/sharagift/JoinGift", {"login_key": keys["alice"], "order_id": direct})
    assert won["code"] == "suc", won
    assert call(f"{server.base_url}/api/v1/gifts/{timed}/proof")[0] == 409  # not opened yet
    return {"direct": direct, "timed": timed, "open_at": open_at, "keys": keys}


def everything_is_there_and_the_overdue_gift_opened_once(
        made: dict, first: ServerProcess, second: ServerProcess) -> None:
    def proof() -> dict | None:
        status, answer = call(f"{second.base_url}/api/v1/gifts/{made['timed']}/proof")
        return answer if status == 200 else None
    assert len(wait_until(proof)["participants"]) == 2
    states = []
    for key in made["keys"].values():  # each login key still signs in, each join is there
        status, view = call(f"{second.base_url}/api/v1/gifts/{made['timed']}", token=key)
        assert status == 200, view
        states.append(view["me"]["state"])
    assert sorted(states) == ["lost", "won"]
    status, view = call(f"{second.base_url}/api/v1/gifts/{made['direct']}", token=made["keys"]["alice"])
    assert status == 200 and view["me"]["state"] == "won"
    opened = f"gift {made['timed']} opened"
    assert first.log_text().count(opened) == 0 and second.log_text().count(opened) == 1


def crash_and_restart(tmp_path, wechat_url: str, crash: Callable[[ServerProcess, str], None]) -> None:
    """Serve on a data directory, make gifts and joins, `crash(server, data_dir)`, wait past the
    timed gift's open time, restart on the same directory: everything is there, and the gift
    due while the server was down opens once."""
    data_dir = str(tmp_path / "data")
    first = embedded_server(data_dir, wechat_url).start(timeout=60)
    try:
        made = gifts_joined_before_a_crash(first)
        crash(first, data_dir)
    finally:
        first.kill()
    wait_until(lambda: clock.utcnow() > made["open_at"])
    second = embedded_server(data_dir, wechat_url)
    try:
        started = time.monotonic()
        second.start(timeout=RESTART_LIMIT_SECONDS)
        print(f"serving again {time.monotonic() - started:.1f} s after the restart")
        everything_is_there_and_the_overdue_gift_opened_once(made, first, second)
    finally:
        second.stop()
    assert processes_mentioning(data_dir) == []  # its engine stopped with it


def kill_the_server(server: ServerProcess, data_dir: str) -> None:
    server.kill()  # its engine's guard stops the engine (or, elsewhere, the next start does)


def kill_the_server_and_its_engine(server: ServerProcess, data_dir: str) -> None:
    engine = DataDirLock(data_dir).read_record()
    # The server's writes are on disk in the journal, not yet in a checkpoint.
    write_journaled(engine_uri(engine["port"]), {"_id": "journal flushed"})
    os.kill(server.process.pid, signal.SIGSTOP)  # frozen, it cannot start its engine again
    os.kill(engine["engine_pid"], signal.SIGKILL)
    server.kill()


def test_a_server_killed_outright_is_back_with_everything_and_opens_the_overdue_gift_once(
        tmp_path, wechat_fake):
    crash_and_restart(tmp_path, wechat_fake.url, kill_the_server)


def test_a_server_and_its_engine_killed_outright_restart_with_everything_recovered_from_the_journal(
        tmp_path, wechat_fake):
    crash_and_restart(tmp_path, wechat_fake.url, kill_the_server_and_its_engine)


def test_a_second_server_on_the_same_data_dir_refuses_and_the_first_keeps_serving(tmp_path):
    data_dir = str(tmp_path / "data")
    first = embedded_server(data_dir).start(timeout=60)
    try:
        engine = engine_pid(data_dir)
        order_id = create_gift(first, method="direct")
        second = run_server(f"--port={free_port()}", f"--data_dir={data_dir}", env={"MONGODB_URI": ""})
        assert second.returncode != 0 and "Traceback" not in second.stderr
        assert f"data directory in use by process {first.process.pid}" in second.stderr
        assert engine_pid(data_dir) == engine and is_engine_on(engine, data_dir)
        assert call(f"{first.base_url}/api/v1/gifts/{order_id}/winners")[0] == 200
    finally:
        first.stop()


def test_an_engine_killed_under_a_running_server_is_started_again_and_the_data_is_still_there(tmp_path):
    data_dir = str(tmp_path / "data")
    server = embedded_server(data_dir).start(timeout=60)
    try:
        order_id = create_gift(server, method="direct")
        record = DataDirLock(data_dir).read_record()
        write_journaled(engine_uri(record["port"]), {"_id": "journal flushed"})
        killed = record["engine_pid"]
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: engine_pid(data_dir) != killed, timeout=60)
        wait_until(lambda: call(server.base_url + "/readyz")[0] == 200, timeout=60)
        status, winners = call(f"{server.base_url}/api/v1/gifts/{order_id}/winners")
        assert status == 200 and winners["order_id"] == order_id
    finally:
        server.stop()
    log = server.log_text()
    assert log.count(f"embedded engine (pid {killed}) exited") == 1 and log.count("embedded engine back") == 1
