"""The web pages (static/): the gift pages (gift.html), the shop and its orders (shop.html),
and the small API only they need: site info, the development sign-in and pay button, the
winners list and the sender's participant list."""
import os
from typing import Awaitable

from tornado import web

from handlers.base import ID_GROUP, BaseHandler
from lottery import devmode

STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "static")

# Everything comes from this origin; avatars may be WeChat's https images.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data: https:; "
                           "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; "
                           "frame-ancestors 'none'")


class PageHandler(web.StaticFileHandler):
    """One HTML page of static/, whatever the path arguments (the page reads its URL)."""

    def initialize(self, page: str) -> None:  # type: ignore[override]
        super().initialize(path=STATIC_DIR)
        self.page = page

    async def get(self, *args: str, include_body: bool = True) -> None:
        """The page; its scripts read the order id and the view from the URL."""
        await super().get(self.page, include_body)

    def head(self, *args: str) -> Awaitable[None]:
        return self.get(include_body=False)

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-cache")


class StaticHandler(web.StaticFileHandler):
    """static/ at /static/, revalidated on each load so a deploy shows at once."""

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")


class SiteHandler(BaseHandler):
    def get(self) -> None:
        """`{"dev": bool, "demo_gifts": [{order_id, method, label}], "demo_sender"}` for the pages."""
        self.reply({"dev": bool(self.settings.get("dev")),
                    "demo_gifts": self.settings.get("demo_gifts") or [],
                    "demo_sender": devmode.DEMO_SENDER})


class DevLoginHandler(BaseHandler):
    async def post(self) -> None:
        """Development sign-in (only with --dev): `{name}` -> `{login_key, name}`."""
        if not self.settings.get("dev"):
            raise web.HTTPError(404, "接口不存在")
        login_key, name = await devmode.sign_in(self.accounts, self.json_body().get("name"))
        self.reply({"login_key": login_key, "name": name})


class DevPayHandler(BaseHandler):
    async def post(self, order_id: str) -> None:
        """Development only (--dev/--demo with the local WeChat Pay): the buyer "pays" an
        order at the fake, which sends this server its real, signed payment notify."""
        fake = self.settings.get("wechatpay_fake")
        if not self.settings.get("dev") or fake is None:
            raise web.HTTPError(404, "接口不存在")
        order = await self.orders.order_of(order_id, self.member_id())
        if order["status"] != "unpaid" or not order["order"].get("prepay_id"):
            raise web.HTTPError(409, "订单不是待支付状态")
        await fake.pay(order_id)
        self.reply({"order_id": order_id})


class WinnersHandler(BaseHandler):
    async def get(self, order_id: str) -> None:
        """Public: who won what, nicknames masked."""
        self.reply(await self.roster.winners(order_id))


class ParticipantsHandler(BaseHandler):
    async def get(self, order_id: str) -> None:
        """The sender's list of who joined, newest first."""
        self.reply(await self.roster.participants(order_id, self.member_id()))


default_handlers = [
    (r"/", PageHandler, {"page": "index.html"}),
    (rf"/gift/{ID_GROUP}(?:/(wait|result|proof|mine))?/?", PageHandler, {"page": "gift.html"}),
    (rf"/shop(?:/new|/product/{ID_GROUP})?/?", PageHandler, {"page": "shop.html"}),
    (rf"/orders/{ID_GROUP}(?:/(pay))?/?", PageHandler, {"page": "shop.html"}),
    (r"/me/prizes/?", PageHandler, {"page": "shop.html"}),
    (r"/static/(.*)", StaticHandler, {"path": STATIC_DIR}),
    (r"/api/site", SiteHandler),
    (r"/api/dev/login", DevLoginHandler),
    (rf"/api/dev/pay/{ID_GROUP}", DevPayHandler),
    (rf"/api/v1/gifts/{ID_GROUP}/winners", WinnersHandler),
    (rf"/api/v1/gifts/{ID_GROUP}/participants", ParticipantsHandler),
]
