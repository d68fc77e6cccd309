"""server.py's HTTP timeouts: a connection that is slow to send its headers or its body, or sits
idle, is cut; an upgraded websocket is not (its pings watch it). Against server.py itself, so the
options are proven to reach the server."""
import asyncio

import pytest

from tests.api import Api
from tests.rawhttp import connect
from tests.servers import ServerProcess, uri_with_db
from tests.ws import WsClient


async def cut_by_the_server(base_url: str, first: bytes, drip: bytes | None = None) -> bytes:
    """Send `first`, then `drip` every 0.2 s, until the server closes the connection; what it
    answered meanwhile (AssertionError if it is still open after 30 s). A drip that crosses the
    server's close draws a reset instead of an end of stream: cut all the same."""
    reader, writer = await connect(base_url, source="127.0.0.1")
    writer.write(first)

    async def dripping() -> None:
        while drip is not None and not writer.is_closing():
            await asyncio.sleep(0.2)
            writer.write(drip)

    task = asyncio.ensure_future(dripping())
    try:
        return await asyncio.wait_for(reader.read(), 30)
    except asyncio.TimeoutError:
        raise AssertionError(f"still open after 30 s: {first[:40]!r}") from None
    except ConnectionResetError:
        return b""
    finally:
        task.cancel()
        writer.close()


@pytest.mark.gen_test(timeout=120)
async def test_slow_half_sent_and_idle_connections_are_cut_and_websockets_are_not(engine_uri, wechat_fake):
    server = ServerProcess(uri_with_db(engine_uri, "t_timeouts"), wechat_fake.url,
                           "--http_idle_timeout=1", "--http_body_timeout=1").start()
    try:
        client = Api(server.base_url)
        try:
            answer = await client.legacy("/api/member/code/login", {"code": "patient"})
        finally:
            client.close()
        assert answer["code"] == "success", (answer, server.log_text()[-3000:])
        key = answer["data"]["login_key"]
        socket = await WsClient.connect(server.base_url, key)
        slow_headers = [cut_by_the_server(server.base_url, b"GET / HTTP/1.1\r\nHost: x\r\n", b"X-Slow: 1\r\n")
                        for _ in range(10)]
        idle = [cut_by_the_server(server.base_url, b"") for _ in range(5)]
        slow_bodies = [cut_by_the_server(server.base_url, b"POST /api/v1/me/profile HTTP/1.1\r\nHost: x\r\n"
                                         b"Content-Length: 1000\r\n\r\n{", b" ") for _ in range(3)]
        kept_alive = [cut_by_the_server(server.base_url, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                      for _ in range(2)]
        answers = await asyncio.gather(*slow_headers, *idle, *slow_bodies, *kept_alive)
        assert answers[:18] == [b""] * 18  # cut without an answer
        assert all(answer.startswith(b"HTTP/1.1 200 ") for answer in answers[18:])  # answered, then cut when idle
        socket.send({"type": "ping"})  # the websocket, idle all along, is still there
        assert (await socket.next("pong"))["type"] == "pong"
        socket.close()
    finally:
        server.stop()
