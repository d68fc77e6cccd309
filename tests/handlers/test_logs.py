"""No log line holds a query string, a header's value or the peer's address, whatever path a
request takes: the API, the pages and static files, the websocket, errors, and Tornado's own
handling of malformed requests. Unexpected errors still reach the log with their traceback."""
import logging

import pytest

from tests.rawhttp import PEER, exchange, request_bytes, status_of

MARKER = "SeCrEtLoGiNkEy0123456789abcdef"
QUERY = f"login_key={MARKER}"


def assert_clean(caplog) -> None:
    for record in caplog.records:
        text = record.getMessage() + (logging.Formatter().formatException(record.exc_info)
                                      if record.exc_info else "")
        assert MARKER not in text, text
        assert PEER not in text, text


# (method, target, extra headers): every kind of path a request can take.
REQUESTS = [
    ("GET", f"/nope?{QUERY}", {}),
    ("POST", f"/api/nope?{QUERY}", {}),
    ("GET", f"/api/v1/gifts/abc?{QUERY}", {"Authorization": f"Bearer {MARKER}"}),
    ("DELETE", f"/api/v1/gifts/abc?{QUERY}", {}),
    ("GET", f"/api/sharagift/JoinGift?{QUERY}", {}),
    ("POST", f"/api/sharagift/JoinGift?{QUERY}", {}),
    ("POST", f"/api/admin/gifts?{QUERY}", {"Authorization": f"Bearer {MARKER}"}),
    ("GET", f"/api/admin/notifications?order_id=x&{QUERY}", {"Authorization": f"Bearer {MARKER}"}),
    ("GET", f"/healthz?{QUERY}", {}),
    ("GET", f"/?{QUERY}", {}),
    ("GET", f"/gift/abc/other?{QUERY}", {}),
    ("GET", f"/static/nope.js?{QUERY}", {}),
    ("GET", f"/static/%ff?{QUERY}", {}),
    ("GET", f"/static/js%00/x?{QUERY}", {}),
    ("POST", f"/ws?{QUERY}", {}),
    ("GET", f"/ws?{QUERY}", {}),
    ("GET", f"/ws?{QUERY}", {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                             "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}),  # upgraded, then 4401
]

# Requests Tornado refuses before any handler sees them (it logs those itself).
MALFORMED = [
    f"GET /x?{QUERY} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {MARKER}\x01\r\n\r\n",
    f"GET /x?{QUERY} HTTP/1.1\r\nHost: x\r\nX-Note: {MARKER}\x7f\r\n\r\n",
    f"GET /x?{QUERY} junk HTTP/1.1\r\nHost: x\r\n\r\n",
    f"GET /x?{QUERY} HTTP/9.9\r\nHost: x\r\n\r\n",
    f"GET /x?{QUERY} HTTP/1.1\r\nHost: {MARKER} x\r\n\r\n",
    f"GET /x?{QUERY} HTTP/1.1\r\nHost: x\r\nHost: {MARKER}\r\n\r\n",
    f"POST /x?{QUERY} HTTP/1.1\r\nHost: x\r\nContent-Length: {MARKER}\r\n\r\n",
    f"POST /x?{QUERY} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{MARKER}\r\n",
]


@pytest.mark.gen_test(timeout=60)
async def test_no_log_line_holds_a_query_string_a_header_or_the_peer_address(http_server, base_url, caplog):
    caplog.set_level(logging.DEBUG)
    for method, target, headers in REQUESTS:
        answer = await exchange(base_url, request_bytes(method, target, headers))
        assert status_of(answer) < 500, (method, target, answer[:200])
    for raw in MALFORMED:
        await exchange(base_url, raw.encode("latin-1"))
    assert any(r.name == "tornado.general" for r in caplog.records)  # Tornado did log them
    assert_clean(caplog)


@pytest.mark.gen_test(timeout=60)
async def test_an_unexpected_error_is_logged_with_its_traceback_and_without_the_query(
        app, http_server, base_url, caplog, monkeypatch):
    async def broken(*args):
        raise RuntimeError("a bug")
    monkeypatch.setattr(app.settings["gifts"], "for_member", broken)
    monkeypatch.setattr(app.settings["accounts"], "member_for", broken)
    caplog.set_level(logging.DEBUG)
    for target in (f"/api/v1/gifts/abc?{QUERY}", f"/api/v1/gifts/abc/winners?{QUERY}"):
        answer = await exchange(base_url, request_bytes("GET", target, {"Authorization": "Bearer k"}))
        assert status_of(answer) == 500
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    assert any("uncaught exception on GET /api/v1/gifts/abc" in r.getMessage() for r in errors)
    assert_clean(caplog)
