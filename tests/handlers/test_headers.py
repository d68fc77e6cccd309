"""Every answer carries the security headers (nosniff, no referrer, a Content-Security-Policy no
looser than the pages'), none names the server's software, and API answers are never cached."""
import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from tests.rawhttp import exchange, headers_of, request_bytes, status_of

ORDER = "abc123"

# (method, path): API answers good and bad, legacy, pages, static files, the websocket's refusals.
ANSWERS = [
    ("GET", "/api/site"), ("GET", "/api/v1/gifts/abc"), ("POST", "/api/sharagift/checkHasJoin"),
    ("GET", "/api/sharagift/JoinGift"), ("DELETE", "/api/v1/gifts/abc"), ("GET", "/nope"),
    ("GET", "/healthz"), ("GET", "/api/v1/gifts/abc/winners"), ("POST", "/api/admin/gifts"),
    ("GET", "/"), ("HEAD", "/"), ("GET", f"/gift/{ORDER}"), ("GET", f"/gift/{ORDER}/wait"),
    ("GET", "/static/js/api.js"), ("GET", "/static/css/app.css"), ("GET", "/static/nope.js"),
    ("GET", "/static/%ff"), ("GET", "/gift/abc/other"), ("POST", "/ws"), ("GET", "/ws"),
]
API = [path for _, path in ANSWERS if path.startswith("/api/") or path in ("/nope", "/healthz")]


def policy(header: str) -> dict[str, set[str]]:
    """A Content-Security-Policy as {directive: sources}."""
    directives = (part.split() for part in header.split(";") if part.strip())
    return {words[0]: set(words[1:]) for words in directives}


def assert_strict(csp: str) -> None:
    """Not looser than the pages' policy: scripts, styles, frames and plugins from this origin
    or nowhere; images from this origin, data: and named https hosts only."""
    found = policy(csp)
    assert found["default-src"] == {"'self'"}
    assert found["object-src"] == {"'none'"} and found["base-uri"] == {"'none'"}
    assert found["frame-ancestors"] == {"'none'"}
    for name in ("script-src", "style-src", "frame-src", "font-src"):
        assert found.get(name, {"'self'"}) <= {"'self'", "'none'"}, name
    assert found["connect-src"] <= {"'self'", "ws:", "wss:"}
    images = found["img-src"] - {"'self'", "data:"}
    assert all(source.startswith("https://") and "*" not in source for source in images), images


def assert_secure(headers: dict[str, str], where: str) -> None:
    assert "server" not in headers, where  # no "TornadoServer/6.x" banner
    assert headers.get("x-content-type-options") == "nosniff", where
    assert headers.get("referrer-policy") == "no-referrer", where
    assert "content-security-policy" in headers, where
    assert_strict(headers["content-security-policy"])


@pytest.mark.gen_test(timeout=60)
async def test_every_answer_has_the_security_headers_and_no_server_banner(http_server, base_url):
    for method, path in ANSWERS:
        answer = await exchange(base_url, request_bytes(method, path))
        headers = headers_of(answer)
        assert_secure(headers, f"{method} {path} {status_of(answer)}")
        if path in API:
            assert headers.get("cache-control") == "no-store", path
        if path == "/" or path.startswith("/gift/" + ORDER):
            assert status_of(answer) == 200 and headers["content-type"].startswith("text/html")


@pytest.mark.gen_test(timeout=60)
async def test_a_members_own_answers_are_never_cached(api, http_client, base_url):
    order_id = await api.create_gift(method="direct")
    key = await api.login("private")
    for method, path, body in (("GET", f"/api/v1/gifts/{order_id}", None),
                               ("POST", f"/api/v1/gifts/{order_id}/join", b"{}"),
                               ("POST", "/api/v1/me/profile", b'{"nickname": "x"}')):
        response = await http_client.fetch(base_url + path, method=method, body=body,
                                           headers={"Authorization": f"Bearer {key}"})
        assert response.code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path
        assert_secure({k.lower(): v for k, v in response.headers.get_all()}, path)


@pytest.mark.gen_test(timeout=60)
async def test_the_websocket_handshake_has_the_security_headers_too(http_server, base_url):
    connection = await websocket_connect(HTTPRequest(base_url.replace("http", "ws") + "/ws"))
    try:
        assert connection.headers is not None
        assert_secure({k.lower(): v for k, v in connection.headers.get_all()}, "/ws 101")
    finally:
        connection.close()
