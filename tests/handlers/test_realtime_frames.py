"""Outgoing websocket frames: written to the socket at once when nothing waits before them, and
through the stream once the socket is full; either way whole and in order, also through a
stream whose write queues are made only while in use (as an open websocket's are)."""
import socket
import struct

import pytest
from tornado.iostream import IOStream, StreamClosedError

from handlers.realtime import lighten_stream, write_text_frame


async def read_text_frame(stream: IOStream) -> bytes:
    """One unmasked text frame's payload (RFC 6455, 5.2)."""
    first, second = await stream.read_bytes(2)
    assert first == 0x81 and not second & 0x80  # final text frame, not masked
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", await stream.read_bytes(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", await stream.read_bytes(8))[0]
    return await stream.read_bytes(size) if size else b""


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("lightened", [False, True])
async def test_frames_written_at_once_and_after_the_socket_filled_arrive_whole_and_in_order(lightened):
    with socket.create_server(("127.0.0.1", 0)) as listener:  # TCP: a full socket takes part of a frame
        client_end = socket.create_connection(listener.getsockname())
        server_end, _ = listener.accept()
    server, client = IOStream(server_end), IOStream(client_end)
    if lightened:
        lighten_stream(server)
    # Every length encoding (7-bit, 16-bit, 64-bit), and megabytes while nobody reads: the
    # socket's buffer fills, and a frame goes partly at once and the rest through the stream.
    payloads = [bytes([i % 251]) * size for i, size in enumerate([0, 5, 125, 126, 200, 65_535, 65_536, 70_000] * 20)]
    at_once = sum(write_text_frame(server, payload) is None for payload in payloads)
    assert 0 < at_once < len(payloads)
    assert server.writing()  # the rest waits for the reader
    for payload in payloads:
        assert await read_text_frame(client) == payload
    assert not server.writing() and not server._write_futures  # every write's future resolved
    server.close()
    with pytest.raises(StreamClosedError):  # as Tornado's own write: the caller counts the connection gone
        write_text_frame(server, b"late")
    client.close()
