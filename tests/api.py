"""A small HTTP client for the server's API, used by tests over real sockets."""
import asyncio
import json
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from lottery import clock
from lottery.accounts import key_digest, member_id_for
from lottery.storage import login_keys, members

ADMIN_TOKEN = "admin-token-for-tests"


class Api:
    """Calls the server the way the mini-program and pages do."""

    def __init__(self, base_url: str, admin_token: str = ADMIN_TOKEN, max_clients: int = 500) -> None:
        self.base_url = base_url.rstrip("/")
        self.admin_token = admin_token
        self.http = AsyncHTTPClient(force_instance=True, max_clients=max_clients)

    def close(self) -> None:
        self.http.close()

    async def request(self, method: str, path: str, body: Any = None, token: str | None = None,
                      raw: bytes | None = None, headers: dict | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", **(headers or {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if method == "POST" and data is None:
            data = b""
        # Generous: a storm of hundreds of requests on two cores shared with other test workers
        # queues here (max_clients) and at the server; a test proves rules, not latency.
        response = await self.http.fetch(HTTPRequest(self.base_url + path, method=method, body=data,
                                                     headers=headers, request_timeout=180),
                                         raise_error=False)
        text = response.body.decode() if response.body else ""
        try:
            return response.code, json.loads(text)
        except ValueError:
            return response.code, text

    async def burst(self, path: str, body: Any, count: int, headers: dict | None = None,
                    bodies: list | None = None) -> list[tuple[int, Any]]:
        """`count` identical JSON POSTs (or one per body of `bodies`) that reach the server
        together: every connection is open before any request is written, so the server reads
        them all in one turn of its loop (a client pool would trickle them in as its connections
        open)."""
        where = urlsplit(self.base_url)
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())

        def request(payload: bytes) -> bytes:
            return (f"POST {path} HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Type: application/json\r\n{extra}"
                    f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n").encode() + payload
        bodies = bodies if bodies is not None else [body] * count
        streams = [await asyncio.open_connection(where.hostname, where.port) for _ in bodies]
        for (_, writer), each in zip(streams, bodies):
            writer.write(request(json.dumps(each).encode()))
        answers = []
        for reader, writer in streams:
            head, _, text = (await reader.read()).partition(b"\r\n\r\n")
            writer.close()
            answers.append((int(head.split()[1]), json.loads(text)))
        return answers

    async def legacy(self, path: str, body: Any) -> dict:
        """A legacy route: always HTTP 200 with the envelope."""
        status, answer = await self.request("POST", path, body)
        assert status == 200, (status, answer)
        assert set(answer) == {"code", "message", "data"}, answer
        return answer

    async def login(self, code: str) -> str:
        answer = await self.legacy("/api/member/code/login", {"code": code})
        assert answer["code"] == "success", answer
        return answer["data"]["login_key"]

    async def create_gift(self, **fields: Any) -> str:
        body = {"sender_openid": "o_sender", "items": [{"name": "礼物"}], "wish": "新年快乐"}
        body.update(fields)
        status, answer = await self.request("POST", "/api/admin/gifts", body, token=self.admin_token)
        assert status == 201, answer
        return answer["order_id"]

    async def check(self, login_key: str, order_id: str) -> dict:
        return await self.legacy("/api/sharagift/checkHasJoin",
                                 {"login_key": login_key, "order_id": order_id})

    async def join_gift(self, login_key: str, order_id: str, form_id: str = "form-1") -> dict:
        return await self.legacy("/api/sharagift/JoinGift",
                                 {"login_key": login_key, "order_id": order_id, "form_id": form_id})

    async def gift(self, login_key: str, order_id: str) -> tuple[int, Any]:
        return await self.request("GET", f"/api/v1/gifts/{order_id}", token=login_key)

    async def join(self, login_key: str, order_id: str, body: Any = None) -> tuple[int, Any]:
        return await self.request("POST", f"/api/v1/gifts/{order_id}/join", body or {}, token=login_key)


async def key_issued_elsewhere(db, openid: str) -> str:
    """A login key for this member as another server process would issue it: stored, and never
    seen by this one (a key this process issued or resolved is answered from memory)."""
    login_key = secrets.token_urlsafe(32)
    member_id = member_id_for(openid)
    await members.upsert(db, member_id, openid, {}, clock.utcnow())
    await login_keys.insert(db, key_digest(login_key), member_id, clock.utcnow() + timedelta(days=1))
    return login_key
