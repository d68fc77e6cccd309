"""The real stack for the mini-program's jest tests: the local WeChat API stand-in and
`server.py --dev` (which runs its own WeChat Pay stand-in), on free loopback ports.

Prints one JSON line `{server, wechat, control, admin_token, data_dir}` once the server is
ready, then serves until stdin closes (jest's globalTeardown closes it) or SIGTERM.

`control` is a small HTTP endpoint for what only this process can do to the stack:
`POST /outage?seconds=N` kills the embedded engine and keeps its port taken for N seconds,
so the server answers 503 and closes websockets with 1013 until the engine is back.
`POST /group-enter-info?code=C&opengid=G` answers what `wx.getGroupEnterInfo` gives the member
who logged in with code C in group G (no opengid: a one-to-one chat), encrypted as WeChat does
with that member's session key.

This is the one file that names the Python test modules (they are being moved; keep every
import of them here)."""
import json
import shutil
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from fakes.wechat import APPID, SECRET, FakeWeChat, group_enter_info  # noqa: E402
from lottery.storage.engine import engine_uri  # noqa: E402
from tests.servers import write_journaled  # noqa: E402

ADMIN_TOKEN = "admin-token-for-miniprogram-tests"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(url: str, server: subprocess.Popen, log_path: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            with open(log_path, encoding="utf-8", errors="replace") as handle:
                raise SystemExit("server exited:\n" + handle.read()[-3000:])
        try:
            urllib.request.urlopen(url + "/readyz", timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not become ready")


def outage(data_dir: str, seconds: float) -> None:
    """Kill the engine and hold its port, so the server's restarts fail until `seconds` pass.
    What the server wrote before is on disk first: the engine acknowledges a write before its
    journal reaches the OS, so a kill right after a join could lose it (as production MongoDB's
    journaled majority writes never would), and the gift would wait for that seat forever."""
    with open(os.path.join(data_dir, "engine.json"), encoding="utf-8") as handle:
        record = json.load(handle)
    write_journaled(engine_uri(record["port"]), {"_id": "before the outage"})
    os.kill(record["engine_pid"], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while True:
        try:
            held = socket.create_server(("127.0.0.1", record["port"]))
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # the killed engine's socket is still closing

    def release() -> None:
        time.sleep(seconds)
        held.close()
    threading.Thread(target=release, daemon=True).start()


def control_server(data_dir: str) -> ThreadingHTTPServer:
    class Control(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            url = urlparse(self.path)
            query = parse_qs(url.query)
            if url.path == "/group-enter-info":
                answer = json.dumps(group_enter_info(query["code"][0], query.get("opengid", [None])[0])).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                return
            if url.path != "/outage":
                self.send_error(404)
                return
            outage(data_dir, float(parse_qs(url.query).get("seconds", ["3"])[0]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Control)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    wechat = FakeWeChat().start()
    data_dir = tempfile.mkdtemp(prefix="mp-stack-")
    port = free_port()
    log_path = os.path.join(data_dir, "server.log")
    env = {**os.environ, "WECHAT_APPID": APPID, "WECHAT_SECRET": SECRET, "WECHAT_API_BASE": wechat.url,
           "ADMIN_TOKEN": ADMIN_TOKEN}
    env.pop("MONGODB_URI", None)
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "server.py"), "--dev", f"--port={port}",
             f"--data_dir={os.path.join(data_dir, 'data')}", "--sweep_seconds=0.2"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, server, log_path)
        control = control_server(os.path.join(data_dir, "data"))
        print(json.dumps({"server": url, "wechat": wechat.url,
                          "control": f"http://127.0.0.1:{control.server_address[1]}",
                          "admin_token": ADMIN_TOKEN, "data_dir": data_dir, "log": log_path}), flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.stdin.close())
        try:
            sys.stdin.read()  # until jest closes our stdin (or dies, which closes it too)
        except (OSError, ValueError):
            pass
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        wechat.stop()
        if not os.environ.get("KEEP_STACK_DATA"):
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
