"""Protocol pings from one timer: a peer that answers stays, a silent one is closed in time."""
import asyncio
import base64
import os

import pytest

from handlers.pinger import SLICE, Pinger
from tests.rawhttp import connect, request_bytes
from tests.ws import WsClient

INTERVAL, TIMEOUT = 0.3, 0.2


@pytest.fixture
def app(build_app):
    return build_app(ws_ping_interval=INTERVAL, ws_ping_timeout=TIMEOUT)


async def silent_peer(base_url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A websocket that completes the handshake and never writes again (no pongs)."""
    reader, writer = await connect(base_url)
    writer.write(request_bytes("GET", "/ws", {
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}))
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    return reader, writer


async def frames_until_close(reader: asyncio.StreamReader) -> list[int]:
    """The opcodes of the server's frames (small, unmasked) up to its close frame."""
    opcodes: list[int] = []
    while not opcodes or opcodes[-1] != 0x8:
        head = await reader.readexactly(2)
        opcodes.append(head[0] & 0x0F)
        await reader.readexactly(head[1] & 0x7F)
    return opcodes


@pytest.mark.gen_test(timeout=30)
async def test_a_peer_that_never_answers_a_ping_is_closed_and_one_that_answers_stays(app, http_server, base_url):
    answering = await WsClient.connect(base_url)
    reader, writer = await silent_peer(base_url)
    loop = asyncio.get_running_loop()
    start = loop.time()
    opcodes = await asyncio.wait_for(frames_until_close(reader), timeout=10)
    assert opcodes[0] == 0x9 and opcodes[-1] == 0x8  # pinged, then closed for not answering
    assert loop.time() - start < 4 * (INTERVAL + TIMEOUT)
    writer.close()
    assert answering.close_code is None  # several rounds later, the answering one is open
    answering.send({"type": "ping"})
    assert (await answering.next("pong"))["type"] == "pong"
    assert len(app.settings["pinger"].sockets) == 1
    answering.close()


class CountedSocket:
    """Stands for a websocket in the pinger's set: it notes each ping."""

    ping_sent_at = pong_at = 0.0

    def __init__(self, pings: list) -> None:
        self.pings = pings

    def ping(self, data: bytes = b"") -> None:
        self.pings.append(self)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        pass


@pytest.mark.gen_test(timeout=30)
async def test_a_round_among_many_sockets_gives_the_loop_turns_between_its_slices():
    # 10,000 pings in one callback held the loop for most of a second every interval.
    pings: list[CountedSocket] = []
    pinger = Pinger(interval=0.05, timeout=0)
    sockets = [CountedSocket(pings) for _ in range(3 * SLICE)]
    for socket in sockets:
        pinger.add(socket)
    seen = []  # pings gone out at each turn this task got
    while len(pings) < len(sockets):
        seen.append(len(pings))
        await asyncio.sleep(0)
    assert any(0 < count < len(sockets) for count in seen)  # it ran between slices of the round
    assert set(pings) == set(sockets)
    for socket in sockets:
        pinger.discard(socket)
