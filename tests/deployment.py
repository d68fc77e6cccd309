"""The production layout on loopback: web and scheduler processes of `server.py` over one
database, behind a real nginx running deploy/nginx.conf. Used by tests/deploy and
bench/scale_out.py.

deploy/nginx.conf is rendered, not rewritten: the upstream servers, the listen address and
the pid, log and temporary paths are replaced by the test's (each replacement must find its
line, so a config that drifted from what the tests run fails loudly), and nginx runs in the
foreground with its own prefix, as root or not."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from lottery.storage.engine import free_port
from tests.servers import ROOT, ServerProcess

NGINX_CONF = os.path.join(ROOT, "deploy", "nginx.conf")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")

WEB_ARGS = ("--role=web", "--draw_lease_seconds=2")
# Fast leadership, sweeps and notification retries, so takeovers happen within a test.
SCHEDULER_ARGS = ("--role=scheduler", "--sweep_seconds=0.2", "--leader_lease_seconds=2",
                  "--draw_lease_seconds=2", "--notify_rate=500", "--notify_lease_seconds=2",
                  "--notify_backoff_seconds=0.2")


def render_nginx_conf(text: str, upstream_ports: list[int], port: int, prefix: str) -> str:
    """deploy/nginx.conf with these upstream ports, listening on 127.0.0.1:`port`, its pid,
    logs and temporary files under `prefix`."""
    def replace(pattern: str, replacement, count: int | None = 1) -> None:
        nonlocal text
        text, found = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        if found == 0 or (count is not None and found != count):
            raise ValueError(f"deploy/nginx.conf: expected {count or 'some'} line(s) matching {pattern!r}, "
                             f"found {found}")

    # The file's upstream servers: the first line's parameters serve for each of ours.
    server_line = re.compile(r"^(\s*)server 127\.0\.0\.1:\d+ (.*);\n", flags=re.MULTILINE)
    first = server_line.search(text)
    if first is None:
        raise ValueError("deploy/nginx.conf: no upstream `server 127.0.0.1:PORT ...;` line")
    ours = "".join(f"{first[1]}server 127.0.0.1:{p} {first[2]};\n" for p in upstream_ports)
    text = text[:first.start()] + ours + server_line.sub("", text[first.start():])
    replace(r"^(\s*)listen 80;$", rf"\g<1>listen 127.0.0.1:{port};")
    replace(r"^pid .*;$", f"pid {prefix}/nginx.pid;")
    replace(r"/var/log/nginx/", f"{prefix}/logs/", count=None)
    replace(r"^http \{$", "http {\n" + "".join(f"    {name}_temp_path {prefix}/temp/{name};\n"
                                                 for name in TEMP_PATHS))
    return text


class Nginx:
    """nginx in the foreground (`-g 'daemon off;'`) with its own prefix and config."""

    def __init__(self, upstream_ports: list[int], port: int | None = None) -> None:
        self.port = port or free_port()
        self.upstream_ports = upstream_ports
        # World-readable: as root, nginx's workers run as the config's `user` and must reach it.
        self.prefix = tempfile.mkdtemp(prefix="nginx-")
        os.chmod(self.prefix, 0o755)
        for folder in ("logs", "temp"):
            os.makedirs(os.path.join(self.prefix, folder), exist_ok=True)
        self.conf = os.path.join(self.prefix, "nginx.conf")
        with open(NGINX_CONF, encoding="utf-8") as handle:
            rendered = render_nginx_conf(handle.read(), upstream_ports, self.port, self.prefix)
        with open(self.conf, "w", encoding="utf-8") as handle:
            handle.write(rendered)
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, *extra: str) -> list[str]:
        return [NGINX, "-p", self.prefix, "-c", self.conf, "-e", os.path.join(self.prefix, "logs", "startup.log"),
                "-g", "daemon off;", *extra]

    def check(self) -> None:
        """`nginx -t`: the rendered file is valid, or RuntimeError with nginx's words."""
        result = subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"nginx -t refused {self.conf}:\n{result.stderr}")

    def start(self, timeout: float = 20) -> "Nginx":
        if not os.path.exists(NGINX):
            raise RuntimeError("nginx is missing: scripts/test.sh installs Debian's nginx")
        self.check()
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL,
                                        stderr=open(os.path.join(self.prefix, "logs", "stderr.log"), "ab"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("nginx exited: " + self.log("error.log")[-2000:])
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not listen in time")

    def log(self, name: str = "gift-lottery.access.log") -> str:
        """One of its logs (the access log by default)."""
        try:
            with open(os.path.join(self.prefix, "logs", name), encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except FileNotFoundError:
            return ""

    def logs(self) -> str:
        """Everything it logged, every file."""
        folder = os.path.join(self.prefix, "logs")
        return "".join(self.log(name) for name in sorted(os.listdir(folder)))

    def stop(self) -> None:
        """SIGQUIT: finish what is in flight, then exit (SIGKILL after 10 s)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def remove(self) -> None:
        shutil.rmtree(self.prefix, ignore_errors=True)


class Deployment:
    """`webs` web processes and `schedulers` scheduler processes of server.py on one database,
    behind nginx. Processes keep their ports when restarted, so nginx's upstream list holds."""

    def __init__(self, mongodb_uri: str, wechat_url: str, webs: int = 3, schedulers: int = 2,
                 env: dict[str, str] | None = None) -> None:
        self.mongodb_uri, self.wechat_url, self.env = mongodb_uri, wechat_url, env or {}
        self.webs = [self.process(*WEB_ARGS) for _ in range(webs)]
        self.schedulers = [self.process(*SCHEDULER_ARGS) for _ in range(schedulers)]
        self.nginx = Nginx([web.port for web in self.webs])

    def process(self, *args: str, stall: str | None = None, port: int | None = None) -> ServerProcess:
        """A server process of this deployment (not started)."""
        process = ServerProcess(self.mongodb_uri, self.wechat_url, *args, stall=stall, port=port)
        process.env.update(self.env)
        return process

    @property
    def base_url(self) -> str:
        """Where clients go: nginx."""
        return self.nginx.base_url

    @property
    def processes(self) -> list[ServerProcess]:
        return [*self.webs, *self.schedulers]

    def start(self, timeout: float = 60) -> "Deployment":
        """Start whatever is not running (all at once, then wait for each), then nginx."""
        starting = [p for p in self.processes if not p.running]
        for process in starting:
            process.start(wait_http=False)
        for process in starting:
            process.ready(timeout)
        if self.nginx.process is None or self.nginx.process.poll() is not None:
            self.nginx.start()
        return self

    def stop(self) -> None:
        """SIGTERM to every server process (each stops in order), then nginx."""
        for process in self.processes:
            if process.running:
                process.process.send_signal(signal.SIGTERM)
        for process in self.processes:
            process.stop()
        self.nginx.stop()

    def logs(self, processes: list[ServerProcess] | None = None) -> str:
        return "".join(p.log_text() for p in (processes or self.processes))
