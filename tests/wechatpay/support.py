"""Shared by the WeChat Pay tests (our client's and the stand-in's own): the stand-in on a real
socket, a receiver of its notifies that verifies each one with our client, clients of it, and an
order paid there."""
from datetime import datetime, timedelta, timezone

import pytest
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from wechatpay.client import VerificationError, WeChatPayClient, WeChatPayConfig, WeChatPayError
from fakes.wechatpay import FakeWeChatPay

CHINA = timezone(timedelta(hours=8))
OPENID = "o_buyer"
TOTAL = 1990


def expire_in(minutes: int = 30) -> datetime:
    return datetime.now(CHINA).replace(microsecond=0) + timedelta(minutes=minutes)


class NotifyReceiver:
    """Our side of notifies in these tests: routes that verify each notify with a client, as
    the payment and refund routes will, answering 204 or 401 `{"code": "FAIL"}`."""

    def __init__(self) -> None:
        self.client: WeChatPayClient | None = None
        self.accepted: list[dict] = []
        self.refused: list[VerificationError] = []
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def app(self) -> web.Application:
        receiver = self

        class Route(web.RequestHandler):
            def initialize(self, expect: str) -> None:
                self.expect = expect

            def post(self) -> None:
                try:
                    resource = receiver.client.verify_notify(self.request.headers, self.request.body,
                                                             expect=self.expect)
                except VerificationError as exc:
                    receiver.refused.append(exc)
                    self.set_status(401)
                    self.finish({"code": "FAIL", "message": exc.reason})
                    return
                receiver.accepted.append(resource)
                self.set_status(204)

        return web.Application([("/pay/notify", Route, {"expect": "transaction"}),
                                ("/refund/notify", Route, {"expect": "refund"})])


@pytest.fixture
def fake():
    fake = FakeWeChatPay(refund_interval=0).start()
    yield fake
    fake.stop()


@pytest.fixture
def receiver(io_loop):
    receiver = NotifyReceiver()
    sockets = bind_sockets(0, "127.0.0.1")
    receiver.port = sockets[0].getsockname()[1]
    server = HTTPServer(receiver.app())
    server.add_sockets(sockets)
    yield receiver
    server.stop()


@pytest.fixture
def make_client(fake, receiver):
    """`make_client(mode=..., **config changes)`: a client of the fake whose notifies go to the
    receiver; the receiver verifies with the last one made."""
    def make(mode: str = "public_key", timeout: float = 5.0, **changes) -> WeChatPayClient:
        config = fake.client_config(receiver.url("/pay/notify"), receiver.url("/refund/notify"), mode=mode)
        if changes:
            config = WeChatPayConfig(**{**config.__dict__, **changes})
        receiver.client = WeChatPayClient(config, timeout=timeout)
        return receiver.client
    return make


@pytest.fixture
def client(make_client) -> WeChatPayClient:
    return make_client()


async def paid_order(client: WeChatPayClient, fake: FakeWeChatPay, no: str = "gift-order-0001",
                     total: int = TOTAL, notify: bool = False) -> str:
    await client.jsapi_prepay(no, "礼物 x3", total, OPENID, expire_in())
    await fake.pay(no, notify=notify)
    return no


async def failure(call) -> WeChatPayError:
    with pytest.raises(WeChatPayError) as caught:
        await call
    return caught.value
