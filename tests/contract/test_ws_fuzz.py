"""A frame fuzzer for /ws (hypothesis): random text, malformed and hostile JSON frames, binary
frames, and raw bytes that break the websocket protocol itself, each example on its own
connection. Whatever a fuzzing client sends, another client's connection stays open and
answered, and nothing reaches the log as an uncaught exception."""
import asyncio
import json
import logging
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.rawhttp import connect, request_bytes
from tests.ws import WsClient

EXAMPLES = 150
ORDER = "0123456789abcdef01234567"

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=False), st.text(max_size=80))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                            max_size=4),
                      max_leaves=12)
identifiers = st.one_of(st.just(ORDER), st.text(max_size=70), st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
                        values)
typed = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(["auth", "subscribe", "unsubscribe", "ping"]), st.text(max_size=40), values)},
    optional={"order_id": identifiers, "version": values, "login_key": st.one_of(st.text(max_size=300), values),
              "extra": values})
frames = st.one_of(
    typed.map(json.dumps),
    values.map(json.dumps),
    st.text(max_size=200),
    st.binary(max_size=200),
    st.integers(min_value=1, max_value=80).map(lambda n: "[" * n * 40 + "]" * n * 40),  # deep, maybe too big
    st.integers(min_value=4000, max_value=6000).map(lambda n: json.dumps({"type": "ping", "pad": "x" * n})),
)


def raw_frame(fin: bool, rsv: int, opcode: int, masked: bool, payload: bytes, lie: int) -> bytes:
    """One websocket frame as bytes, possibly malformed: reserved bits, unknown opcodes, no
    mask, a length that lies about the payload."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    length = max(0, len(payload) + lie)
    mask_bit = 0x80 if masked else 0
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 65536:
        head += bytes([mask_bit | 126]) + length.to_bytes(2, "big")
    else:
        head += bytes([mask_bit | 127]) + length.to_bytes(8, "big")
    if masked:
        key = os.urandom(4)
        head += key
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + payload


raw_frames = st.lists(st.one_of(
    st.builds(raw_frame, st.booleans(), st.integers(0, 7), st.integers(0, 15), st.booleans(),
              st.binary(max_size=300), st.sampled_from([0, 0, 0, -1, 1, 70000])),
    st.binary(min_size=1, max_size=100)), min_size=1, max_size=4)


@pytest.fixture
def scene(api, base_url, io_loop):
    """A bystander following a gift, and a fuzzer's login key."""
    async def setup():
        order_id = await api.create_gift(method="full", open_number=5)
        bystander_key, fuzzer_key = await api.login("bystander"), await api.login("fuzzer")
        bystander = await WsClient.connect(base_url, bystander_key)
        bystander.send({"type": "subscribe", "order_id": order_id})
        await bystander.next("snapshot")
        return order_id, bystander, fuzzer_key
    order_id, bystander, fuzzer_key = io_loop.run_sync(setup)
    yield order_id, Bystander(bystander), fuzzer_key

    async def still_following() -> None:  # the hub still pushes to it
        await api.join(await api.login("late joiner"), order_id)
        assert (await bystander.next("progress"))["joined_count"] == 1
    io_loop.run_sync(still_following)
    bystander.close()


class Bystander:
    """Another member's connection, following a gift; asked to answer a ping every fifth
    example (its own frames count against its rate limit too)."""

    def __init__(self, client: WsClient) -> None:
        self.client = client
        self.examples = 0

    async def still_answered(self, every: int = 5) -> None:
        self.examples += 1
        if self.examples % every == 0:
            self.client.send({"type": "ping"})
            assert (await self.client.next("pong", timeout=20))["type"] == "pong"


def no_errors(caplog) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def test_random_and_malformed_frames_never_reach_another_client_or_the_error_log(scene, base_url, io_loop, caplog):
    order_id, bystander, fuzzer_key = scene

    @given(sent=st.lists(frames, min_size=1, max_size=8), authenticated=st.booleans())
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def example(sent: list, authenticated: bool) -> None:
        async def run() -> None:
            fuzzer = await WsClient.connect(base_url, fuzzer_key if authenticated else None)
            for frame in sent:
                fuzzer.send(frame)
            fuzzer.send({"type": "subscribe", "order_id": order_id})
            fuzzer.send({"type": "ping"})
            await asyncio.wait_for(pong_or_close(fuzzer), 20)  # all answered, or cut
            fuzzer.close()
            await bystander.still_answered()
        io_loop.run_sync(run, timeout=60)

    example()
    no_errors(caplog)


async def pong_or_close(client: WsClient) -> None:
    """Read until the server answers the last ping, or closes the connection."""
    while (text := await client.connection.read_message()) is not None:
        if text == '{"type": "pong"}' or json.loads(text).get("type") == "pong":
            return


def test_frames_that_break_the_protocol_close_only_their_own_connection(scene, base_url, io_loop, caplog):
    _, bystander, _ = scene
    handshake = request_bytes("GET", "/ws", {"Upgrade": "websocket", "Connection": "Upgrade",
                                             "Sec-WebSocket-Version": "13",
                                             "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})

    @given(sent=raw_frames)
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def example(sent: list[bytes]) -> None:
        async def run() -> None:
            reader, writer = await connect(base_url)
            writer.write(handshake)
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
            for data in sent:
                writer.write(data)
            writer.write(raw_frame(True, 0, 8, True, b"\x03\xe8", 0))  # a close frame, if still understood
            try:  # the server closes a broken stream at once; one still waiting for bytes, we do
                await asyncio.wait_for(reader.read(), 0.3)
            except (asyncio.TimeoutError, ConnectionError):
                pass
            writer.close()
            await bystander.still_answered()
        io_loop.run_sync(run, timeout=60)

    example()
    no_errors(caplog)
