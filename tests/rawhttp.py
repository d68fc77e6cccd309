"""Raw HTTP over a socket, for requests no client library sends: malformed, half-sent, or from
another loopback address (so a test can look for that address in the log)."""
import asyncio
from urllib.parse import urlsplit

# A loopback address of its own for test clients: a log line holding it names the peer.
PEER = "127.0.0.2"


def where(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    # "localhost" may resolve to ::1 first; the test servers listen on IPv4 loopback.
    return ("127.0.0.1" if parts.hostname == "localhost" else parts.hostname), parts.port


def request_bytes(method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b"",
                  host: str = "127.0.0.1") -> bytes:
    """One HTTP/1.1 request that asks the server to close the connection after answering
    (unless `headers` say otherwise)."""
    headers = {"Connection": "close", **(headers or {})}
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def connect(base_url: str, source: str = PEER) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = where(base_url)
    return await asyncio.open_connection(host, port, local_addr=(source, 0))


async def exchange(base_url: str, data: bytes, timeout: float = 20.0, source: str = PEER) -> bytes:
    """Send `data` and read until the server closes the connection (AssertionError if it does
    not within `timeout`)."""
    reader, writer = await connect(base_url, source)
    try:
        writer.write(data)
        return await asyncio.wait_for(reader.read(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"the server kept the connection open past {timeout} s") from None
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer."""
    return int(answer.split(b" ", 2)[1])


def headers_of(answer: bytes) -> dict[str, str]:
    """The header fields of a raw HTTP answer, names in lower case (the last of repeated ones)."""
    head = answer.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
    return {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in head)}


def open_connections(port: int) -> int:
    """Connections to `port` on this machine that the server side still holds open
    (ESTABLISHED or CLOSE_WAIT), from /proc/net/tcp."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                rows = handle.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            if int(local.rsplit(":", 1)[1], 16) == port and state in ("01", "08"):
                count += 1
    return count
