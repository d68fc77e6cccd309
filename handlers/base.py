"""The base of every handler: one way to reach each service, the login key resolved once in
`prepare()`, one JSON-body parser, one `write_error`.

Two reply styles share it. Legacy routes (the seed's mini-program) always answer HTTP 200 with
`{"code", "message", "data"}`; v1 routes answer real status codes with
`{"error": {"code", "message"}}`."""
import hmac
import json
import logging
from typing import Any

from tornado import web

from handlers.errors import BodyTooLarge, status_of
from lottery import clock, metrics
from lottery.accounts import Accounts
from lottery.draw import Draws
from lottery.errors import Forbidden, InvalidInput, LoginExpired, LotteryError
from lottery.gifts import Gifts, live, member_view
from lottery.health import Health
from lottery.live.hub import LiveHub
from lottery.catalogue import Catalogue
from lottery.claims import Claims
from lottery.notifications import Notifications
from lottery.orders import Orders
from lottery.refunds import Refunds
from lottery.profiles import Profiles
from lottery.roster import Roster
from lottery.storage.backup import Backups
from lottery.validate import ID, ID_PATTERN

log = logging.getLogger("gift_lottery.http")

# An id in a route (an order, a product), as a path group: the one definition of what an id looks like.
ID_GROUP = f"({ID})"
MAX_JSON_BODY = 64 * 1024


class Services:
    """Every service the app was built with (server.make_app), one typed property each; shared
    by the HTTP and websocket handlers."""

    settings: dict[str, Any]

    @property
    def accounts(self) -> Accounts:
        return self.settings["accounts"]

    @property
    def gifts(self) -> Gifts:
        return self.settings["gifts"]

    @property
    def draws(self) -> Draws:
        return self.settings["draws"]

    @property
    def profiles(self) -> Profiles:
        return self.settings["profiles"]

    @property
    def roster(self) -> Roster:
        return self.settings["roster"]

    @property
    def notifications(self) -> Notifications:
        return self.settings["notifications"]

    @property
    def hub(self) -> LiveHub:
        return self.settings["hub"]

    @property
    def health(self) -> Health:
        return self.settings["health"]

    @property
    def backups(self) -> Backups:
        return self.settings["backups"]

    @property
    def catalogue(self) -> Catalogue:
        return self.settings["catalogue"]

    @property
    def orders(self) -> Orders:
        return self.settings["orders"]

    @property
    def claims(self) -> Claims:
        return self.settings["claims"]

    @property
    def refunds(self) -> Refunds:
        return self.settings["refunds"]


class BaseHandler(Services, web.RequestHandler):
    """Shared by every HTTP handler."""

    legacy = False  # legacy routes answer the seed's envelope
    # Routes about one gift: its document and the member's join come with the login key.
    loads_gift = False
    current_user: str | None
    gift: dict | None = None
    join: dict | None = None

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")

    async def prepare(self) -> None:
        """Resolve the login key, if the request carries one, to the member it belongs to; on a
        gift route, with the gift and the member's join in the same database round trip."""
        order_id = self.requested_order_id() if self.loads_gift else None
        if order_id is not None:
            self.current_user, self.gift, self.join = await self.gifts.for_member(self.login_key(), order_id)
        else:
            self.current_user = await self.accounts.member_for(self.login_key())

    def requested_order_id(self) -> str | None:
        """The gift this request is about: the route's order id."""
        return self.path_args[0] if self.path_args else None

    def my_gift(self) -> tuple[str, dict, dict]:
        """(member id, gift, the member's view of it) as prepare() read them; 401 or 404 otherwise."""
        member_id = self.member_id()
        gift = live(self.gift)
        return member_id, gift, member_view(gift, self.join, member_id, clock.utcnow())

    def login_key(self) -> str | None:
        """`Authorization: Bearer <login_key>`."""
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def member_id(self) -> str:
        """The member behind the request's login key, or 401."""
        if self.current_user is None:
            raise LoginExpired()
        return self.current_user

    def json_body(self) -> dict:
        """The request body as a JSON object, or InvalidInput."""
        if not hasattr(self, "_json_body"):
            self._json_body = self._parse_body()
        return self._json_body

    def _parse_body(self) -> dict:
        if len(self.request.body) > MAX_JSON_BODY:
            raise BodyTooLarge()
        if not self.request.body:
            return {}
        try:
            body = json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput("请求体不是合法的 JSON") from exc
        if not isinstance(body, dict):
            raise InvalidInput("请求体必须是 JSON 对象")
        return body

    def require_admin(self) -> None:
        """Admin routes exist only when ADMIN_TOKEN is set, and need it as the bearer token."""
        expected = self.settings.get("admin_token")
        if not expected:
            raise web.HTTPError(404)
        given = self.login_key() or ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Forbidden("管理令牌无效")

    def reply(self, data: Any = None, code: str = "success", message: str = "", status: int = 200) -> None:
        """A successful answer in this route's style."""
        self.set_status(status)
        if self.legacy:
            data = {"code": code, "message": message, "data": data}
        self.finish(json.dumps(data, ensure_ascii=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, LotteryError):
            code, message, status = exc.code, exc.message, status_of(exc)
        elif isinstance(exc, web.HTTPError) and status_code < 500:
            code, message, status = "http_" + str(status_code), exc.log_message or self._reason, status_code
        else:
            code, message, status = "internal", "服务器内部错误", 500
        if self.legacy and (status < 500 or isinstance(exc, LotteryError)):
            # The seed's client reads `code`, so every known error is a 200 "error".
            self.set_status(200)
            self.finish(json.dumps({"code": "error", "message": message, "data": None}, ensure_ascii=False))
            return
        self.set_status(status)
        self.finish(json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """Client mistakes: one warning line. Anything else: the traceback. Never the query
        string (login keys travel there on some routes)."""
        where = f"{self.request.method} {self.request.path}"
        if isinstance(value, LotteryError):
            log.warning("%s -> %s", where, value.code)
        elif isinstance(value, web.HTTPError) and value.status_code < 500:
            log.warning("%s -> %d", where, value.status_code)
        else:
            log.error("uncaught exception on %s", where, exc_info=(typ, value, tb))


class LegacyHandler(BaseHandler):
    """The seed's routes: the login key travels in the JSON body."""

    legacy = True

    def login_key(self) -> str | None:
        key = self.json_body().get("login_key")
        return key if isinstance(key, str) and 0 < len(key) <= 128 else None

    def requested_order_id(self) -> str | None:
        order_id = self.json_body().get("order_id")
        return order_id if isinstance(order_id, str) and ID_PATTERN.match(order_id) else None


class NotFoundHandler(BaseHandler):
    """The catch-all: JSON 404 for any unknown path."""

    async def prepare(self) -> None:
        raise web.HTTPError(404, "接口不存在")


HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def log_request(handler: web.RequestHandler) -> None:
    """Access log without the query string: `/ws?login_key=...` must never reach a log."""
    status = handler.get_status()
    seconds = handler.request.request_time()
    # Bounded labels only: the route's name is its handler class (not the path), and a method
    # a client made up is "other".
    method = handler.request.method if handler.request.method in HTTP_METHODS else "other"
    metrics.REQUEST_SECONDS.labels(type(handler).__name__, method, str(status)).observe(seconds)
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    logging.getLogger("tornado.access").log(
        level, "%d %s %s %.1fms", status, handler.request.method, handler.request.path, 1000.0 * seconds)
