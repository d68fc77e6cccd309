"""The server's cost of writing one frame to each of N websockets, nothing else running.

N real TCP connections on loopback (the peers read nothing during the measure: the kernel's
buffers take the frames), each wrapped in a Tornado IOStream as the server holds them. One
result-sized frame is written to every stream, the way the hub does at a result's fan-out,
two ways, alternating rounds:
- `tornado`: Tornado's websocket framing and stream write (a future and callbacks per write),
- `direct`: handlers.realtime.write_text_frame (one `send` when nothing is queued before it).
Reports the microseconds a socket, loop turns included (the last callbacks run before the clock stops).

    python bench/ws_write.py [--sockets 9000] [--rounds 5]

Last line: one JSON object with the figures."""
import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tornado.iostream import IOStream  # noqa: E402
from tornado.websocket import WebSocketProtocol13  # noqa: E402

from handlers.realtime import write_text_frame  # noqa: E402

FRAME = b'{"type":"opened","order_id":"0123456789abcdef01234567","version":12,' + b'"x":0,' * 60 + b'"me":{}}'


def tornado_write(stream: IOStream, data: bytes) -> None:
    """What Tornado's protocol object does for a server's text frame (`_write_frame`)."""
    protocol = WebSocketProtocol13.__new__(WebSocketProtocol13)  # framing only: no handler
    protocol.stream, protocol.mask_outgoing, protocol._wire_bytes_out = stream, False, 0
    protocol._write_frame(True, 0x1, data)


async def run(args: argparse.Namespace) -> dict:
    needed = 2 * args.sockets + 100  # both ends of every connection live in this process
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        sys.exit(f"{needed} open files needed, the hard limit is {hard}: use fewer --sockets")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    streams, peers = [], []
    for _ in range(args.sockets):
        peer = socket.create_connection(listener.getsockname())
        server_end, _ = listener.accept()
        streams.append(IOStream(server_end))
        peers.append(peer)
    figures: dict[str, list[float]] = {"tornado": [], "direct": []}
    for _ in range(args.rounds):
        for way, write in (("tornado", tornado_write), ("direct", write_text_frame)):
            start = time.perf_counter()
            for stream in streams:
                write(stream, FRAME)
            await asyncio.sleep(0)  # the callbacks the writes queued
            await asyncio.sleep(0)
            figures[way].append((time.perf_counter() - start) / args.sockets * 1e6)
            for peer in peers:  # drain, unmeasured
                peer.recv(65536)
    for stream in streams:
        stream.close()
    for peer in peers:
        peer.close()
    listener.close()
    return {"bench": "ws_write", "sockets": args.sockets, "frame_bytes": len(FRAME), "rounds": args.rounds,
            **{f"{way}_us_per_socket": round(statistics.median(values), 2) for way, values in figures.items()},
            **{f"{way}_us_range": [round(min(values), 2), round(max(values), 2)] for way, values in figures.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=9000)
    parser.add_argument("--rounds", type=int, default=5)
    figures = asyncio.run(run(parser.parse_args()))
    print(f"{figures['sockets']} sockets, a {figures['frame_bytes']}-byte frame each: Tornado's write "
          f"{figures['tornado_us_per_socket']} us a socket (range {figures['tornado_us_range']}), "
          f"direct {figures['direct_us_per_socket']} us (range {figures['direct_us_range']})")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
