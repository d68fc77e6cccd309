"""Helpers for the browser tests: a server process under test and a person with their own
browser context."""
import json
import os
import re
import tempfile
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Iterator

from pymongo import MongoClient
from pymongo.database import Database

from lottery.storage.connection import database_name
from tests.api import ADMIN_TOKEN
from tests.servers import ROOT, ServerProcess, uri_with_db

CHROMIUM = "/usr/bin/chromium"
# What this machine's closed network needs (see the machine notes): no background traffic.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOTS = os.path.join(ROOT, "test-artifacts", "screenshots")
# Unused by development sign-in; nothing listens there.
NO_WECHAT = "http://127.0.0.1:9"


def call(base_url: str, method: str, path: str, body: dict | None = None, token: str | None = None
         ) -> tuple[int, dict]:
    """One JSON request to a server under test."""
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    request = urllib.request.Request(base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


class Site:
    """A server process under test and shortcuts to its API."""

    def __init__(self, process: ServerProcess) -> None:
        self.process = process
        self.base_url = process.base_url

    def sign_in(self, name: str) -> str:
        status, answer = call(self.base_url, "POST", "/api/dev/login", {"name": name})
        assert status == 200, answer
        return answer["login_key"]

    def create_gift(self, sender: str = "小红", **fields) -> str:
        """A paid gift from the development member `sender` (so it has a nickname)."""
        self.sign_in(sender)
        body = {"sender_openid": f"dev_{sender}", "items": [{"name": "礼物"}], "wish": "新年快乐"}
        body.update(fields)
        status, answer = call(self.base_url, "POST", "/api/admin/gifts", body, token=ADMIN_TOKEN)
        assert status == 201, answer
        return answer["order_id"]

    def join(self, login_key: str, order_id: str, **body) -> dict:
        status, answer = call(self.base_url, "POST", f"/api/v1/gifts/{order_id}/join", body, login_key)
        assert status == 200, answer
        return answer

    def gift(self, login_key: str, order_id: str) -> dict:
        status, answer = call(self.base_url, "GET", f"/api/v1/gifts/{order_id}", token=login_key)
        assert status == 200, answer
        return answer

    def admin(self, method: str, path: str, body: dict | None = None) -> dict:
        """The operator's API (the admin token)."""
        status, answer = call(self.base_url, method, path, body, token=ADMIN_TOKEN)
        assert status == 200, answer
        return answer

    @contextmanager
    def database(self) -> Iterator[Database]:
        """The server's database, for what no API does: time passing."""
        uri = self.process.env["MONGODB_URI"]
        client = MongoClient(uri, tz_aware=True)
        try:
            yield client[database_name(uri)]
        finally:
            client.close()

    def make_due(self, order_id: str) -> None:
        """Bring the gift's open time (or deadline) to now: the server's scheduler draws it."""
        now = datetime.now(timezone.utc)
        with self.database() as db:
            db.gifts.update_one({"_id": order_id}, {"$set": {"open_at": now, "deadline_at": now, "due_at": now}})


def in_seconds(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()


def start_server(engine_uri: str, *args: str, port: int | None = None) -> ServerProcess:
    uri = uri_with_db(engine_uri, "pages_" + uuid.uuid4().hex[:12])
    media = tempfile.mkdtemp(prefix="media-")  # the console's uploads, out of the working tree
    return ServerProcess(uri, NO_WECHAT, "--dev", "--sweep_seconds=0.5", f"--media_dir={media}", *args,
                         port=port).start()


class Person:
    """One person with their own browser context (own storage, own login key)."""

    def __init__(self, browser, base_url: str, name: str, viewport: dict | None = None) -> None:
        self.name = name
        self.base_url = base_url
        self.context = browser.new_context(viewport=viewport or {"width": 375, "height": 812}, locale="zh-CN",
                                           timezone_id="Asia/Shanghai", device_scale_factor=2)
        self.context.set_default_timeout(15000)
        self.errors: list[str] = []
        self.allowed_errors: list[re.Pattern] = []
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self._error(
            f"{m.text} ({m.location.get('url', '')})"))
        self.page.on("pageerror", lambda e: self._error(f"uncaught: {e}"))

    def _error(self, text: str) -> None:
        if not any(p.search(text) for p in self.allowed_errors):
            self.errors.append(text)

    def allow_errors(self, pattern: str) -> None:
        """Console errors matching `pattern` are expected from now on (e.g. a server is down)."""
        self.allowed_errors.append(re.compile(pattern))

    def signed_in(self, login_key: str) -> "Person":
        """Store a login key as the pages do, before any page script runs."""
        self.context.add_init_script(
            f"localStorage.setItem('giftLottery.loginKey', {json.dumps(login_key)});"
            f"localStorage.setItem('giftLottery.name', {json.dumps(self.name)});")
        return self

    def open(self, path: str) -> "Person":
        self.page.goto(self.base_url + path)
        return self

    def mark_document(self) -> None:
        """Tag the current document; `same_document()` later proves nothing reloaded it."""
        self.page.evaluate("window.__sameDocument = true")

    def same_document(self) -> bool:
        return self.page.evaluate("window.__sameDocument === true")

    def screenshot(self, name: str) -> None:
        """Save the whole page, once any toast has faded. A page that shows a program's
        placeholder (null, undefined, NaN) fails here."""
        self.page.locator(".toast--shown").wait_for(state="detached", timeout=5000)
        text = self.page.locator("body").inner_text()
        assert not re.search(r"\b(null|undefined|NaN)\b", text), text
        os.makedirs(SCREENSHOTS, exist_ok=True)
        self.page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True, animations="disabled")

    def close(self) -> None:
        self.context.close()


