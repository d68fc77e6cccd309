"""`python server.py`: its options, and the embedded engine it starts and stops by itself."""
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request

import pytest

from tests.api import ADMIN_TOKEN
from lottery.storage.engine import free_port
from tests.servers import ROOT, ServerProcess, uri_with_db

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
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


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


def test_development_mode_refuses_an_address_other_than_loopback():
    for address in ("0.0.0.0", "::", "192.0.2.10", "example.com"):
        result = run_server("--dev", f"--address={address}")
        assert result.returncode != 0 and "loopback" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
