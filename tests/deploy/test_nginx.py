"""deploy/nginx.conf's own promises, checked through a running nginx: request ids, the body
limit matching the server's, the websocket origin check seeing the public host, no login key in
its logs, and websocket timeouts that suit the server's pings."""
import json
import re

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse

from lottery.storage.engine import free_port
from config import Config
from server import MAX_BODY_BYTES
from tests.deployment import NGINX_CONF, Nginx
from tests.waiting import until
from tests.ws import WsClient

pytestmark = pytest.mark.deploy

ORDER_ID = "0123456789abcdef01234567"


async def fetch(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None) -> HTTPResponse:
    client = AsyncHTTPClient(force_instance=True)
    try:
        return await client.fetch(HTTPRequest(url, method=method, body=body, headers=headers or {},
                                              request_timeout=30), raise_error=False)
    finally:
        client.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_request_keeps_the_callers_id_or_gets_one_and_it_comes_back_once(cluster):
    mine = await fetch(cluster.base_url + "/healthz", headers={"X-Request-Id": "app-7f3a.9:x"})
    assert mine.code == 200 and mine.headers.get_list("X-Request-Id") == ["app-7f3a.9:x"]
    for sent in ({}, {"X-Request-Id": "not an id"}, {"X-Request-Id": "x" * 65}):
        made = await fetch(cluster.base_url + "/healthz", headers=sent)
        assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-Id"]), made.headers
    await until(lambda: logged(cluster, "rid=app-7f3a.9:x"), timeout=10)


@pytest.mark.gen_test(timeout=60)
async def test_nginx_refuses_a_body_the_server_would_not_read_and_passes_one_it_would(cluster):
    url = f"{cluster.base_url}/api/v1/gifts/{ORDER_ID}/join"
    headers = {"Content-Type": "application/json", "Authorization": "Bearer nobody"}
    over = await fetch(url, "POST", b" " * (MAX_BODY_BYTES + 1), headers)
    assert over.code == 413 and json.loads(over.body)["error"]["code"] == "body_too_large"
    at_limit = await fetch(url, "POST", b" " * MAX_BODY_BYTES, headers)
    assert at_limit.code == 401  # read by the server, which then refused the login key
    # nginx logs a request once it has sent the answer: the line may follow the answer.
    lines = await until(lambda: len(logged(cluster, ORDER_ID)) == 2 and logged(cluster, ORDER_ID), timeout=10)
    assert " 413 " in lines[0] and "upstream=- " in lines[0]  # answered by nginx itself
    assert " 401 " in lines[1] and "upstream=127.0.0.1:" in lines[1]


def logged(cluster, text: str) -> list[str]:
    """nginx's access-log lines that mention `text`."""
    return [line for line in cluster.nginx.log().splitlines() if text in line]


@pytest.mark.gen_test(timeout=60)
async def test_a_browser_on_the_public_host_may_open_the_websocket_and_another_site_may_not(cluster):
    # Behind nginx on 443 or 80 a page's Origin is its host without a port, which is the Host
    # nginx sends on ($host).
    own = await WsClient.connect(cluster.base_url, headers={"Origin": "http://127.0.0.1"})
    try:
        own.send({"type": "ping"})
        assert (await own.next("pong"))["type"] == "pong"
    finally:
        own.close()
    with pytest.raises(HTTPClientError) as refused:
        await WsClient.connect(cluster.base_url, headers={"Origin": "https://evil.example"})
    assert refused.value.code == 403


@pytest.mark.gen_test(timeout=60)
async def test_a_login_key_in_a_websocket_url_reaches_no_nginx_log_even_when_no_process_answers():
    # nginx's error log prints the request line; the mini-program's carries its login key.
    proxy = Nginx([free_port()]).start()  # nothing listens upstream
    try:
        with pytest.raises(HTTPClientError) as failed:
            await WsClient.connect(proxy.base_url, login_key="k3y-in-the-url")
        assert failed.value.code == 502
        assert (await fetch(proxy.base_url + "/api/site?probe=visible")).code == 502
        await until(lambda: proxy.log().count(" 502 ") == 2, timeout=10)
        logs = proxy.logs()
        assert "k3y-in-the-url" not in logs
        assert "probe=visible" in logs  # other routes' upstream failures are still logged, URL and all
    finally:
        proxy.stop()
        proxy.remove()


def test_websocket_timeouts_outlast_the_servers_pings_and_http_ones_do_not_cut_them_short():
    # Traffic crosses a websocket at least every ping interval (the server's ping, the peer's
    # pong); nginx must not call a quiet connection dead before a ping could have failed.
    with open(NGINX_CONF, encoding="utf-8") as handle:
        conf = handle.read()
    ws = re.search(r"location = /ws \{(.*?)\n        \}", conf, re.DOTALL)[1]
    seconds = {name: int(value) for name, value in re.findall(r"(proxy_(?:read|send)_timeout) (\d+)s;", ws)}
    interval, timeout = Config.ws_ping_interval, Config.ws_ping_timeout  # the defaults
    assert seconds["proxy_read_timeout"] > interval + timeout and seconds["proxy_send_timeout"] > interval + timeout
