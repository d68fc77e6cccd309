"""The base of every handler: the services as properties (handlers/services.py), the login key
resolved once in `prepare()`, one JSON-body parser, one `write_error`.

Two reply styles share it. Legacy routes (the seed's mini-program) always answer HTTP 200 with
`{"code", "message", "data"}`; v1 routes answer real status codes with
`{"error": {"code", "message"}}`."""
import asyncio
import hmac
import json
import logging
from typing import Any

import pymongo
from tornado import web

from handlers import params
from handlers.access_log import loggable_path
from handlers.errors import BodyTooLarge, status_of
from handlers.services import ServiceAccess
from lottery import clock, logs
from lottery.backoff import database_away
from lottery.errors import DatabaseUnavailable, Forbidden, InvalidInput, LoginExpired, LotteryError
from lottery.admission import live
from lottery.gifts import member_view
from lottery.images import ImageSources
from lottery.validate import ID, ID_PATTERN

log = logging.getLogger("gift_lottery.http")

# An id in a route (an order, a product), as a path group: the one definition of what an id looks like.
ID_GROUP = f"({ID})"
MAX_JSON_BODY = 64 * 1024
RETRY_AFTER_SECONDS = 2  # while the database is away: an embedded engine restarts within seconds
DEFAULT_REQUEST_TIMEOUT = 2.5  # seconds; a route answers within 3 s whatever the database does


def content_security_policy(images: ImageSources) -> str:
    """Every answer's Content-Security-Policy, the pages' in particular: everything from this
    origin, images also from the allowed image hosts, nothing framed, no plugins."""
    image_sources = " ".join(["'self'", "data:", *(f"https://{host}" for host in images.hosts)])
    return (f"default-src 'self'; img-src {image_sources}; connect-src 'self' ws: wss:; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class CommonHandler:
    """What every handler shares, API, pages, static files and the websocket alike: the
    security headers of every answer, logging that never holds a query string, a header or an
    address, and the count of requests in flight."""

    settings: dict[str, Any]
    request: Any
    _request_id: str | None = None
    counted = True  # in the requests in flight (a websocket, once open, is not a request)
    _counting = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.counted and "in_flight" in self.settings:
            self.settings["in_flight"].started()
            self._counting = True

    def _uncount(self) -> None:
        if self._counting:
            self._counting = False
            self.settings["in_flight"].ended()

    def on_finish(self) -> None:
        self._uncount()

    def on_connection_close(self) -> None:
        self._uncount()  # the client left before its answer
        super().on_connection_close()  # type: ignore[misc]

    @property
    def request_id(self) -> str:
        """The client's `X-Request-Id` (a short plain token), or one made here; answered in the
        same header and on every log line of the request and of the work it starts."""
        if self._request_id is None:
            self._request_id = logs.request_id_from(self.request.headers.get("X-Request-Id"))
        return self._request_id

    def set_default_headers(self) -> None:
        # Runs before the request's task is made, so the task and all it starts inherit the id.
        logs.REQUEST_ID.set(self.request_id)
        self.set_header("X-Request-Id", self.request_id)
        self.clear_header("Server")  # no version banner
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Content-Security-Policy", self.settings.get("content_security_policy")
                        or content_security_policy(ImageSources(())))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Every error answer, of every handler and style: never cacheable (a proxy must not keep
        an outage or a 404 for the next minute), whatever the route's own Cache-Control; then
        the answer itself (`error_answer`)."""
        self.set_header("Cache-Control", "no-store")
        self.error_answer(status_code, **kwargs)

    def error_answer(self, status_code: int, **kwargs: Any) -> None:
        """The body of an error answer: Tornado's own page, unless the handler says otherwise."""
        super().write_error(status_code, **kwargs)  # type: ignore[misc]

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """Client mistakes: one warning line. Anything else: the traceback. Method and path
        only (Tornado's own would add the query string, the address and the headers)."""
        where = f"{self.request.method} {loggable_path(self.request)}"
        if isinstance(value, LotteryError):
            log.warning("%s -> %s", where, value.code)
        elif database_away(value):
            log.warning("%s -> database unavailable (%s)", where, type(value).__name__)
        elif isinstance(value, web.HTTPError) and value.status_code < 500:
            log.warning("%s -> %d", where, value.status_code)
        else:
            log.error("uncaught exception on %s", where, exc_info=(typ, value, tb))


class BaseHandler(CommonHandler, ServiceAccess, web.RequestHandler):
    """Shared by every HTTP handler of the API."""

    # Seconds all of one request's database operations may take together; None: the app's
    # `request_timeout` (a route whose work is long by nature, a backup, sets its own).
    database_budget: float | None = None

    legacy = False  # legacy routes answer the seed's envelope
    # Routes about one gift: its document and the member's join come with the login key.
    loads_gift = False
    # With the gift, the member's join record (in the same read); a join needs no record (its
    # own update refuses a second one), so it reads the key and the gift where others' reads
    # of them serve it too.
    loads_join = True
    current_user: str | None
    gift: dict | None = None
    join: dict | None = None

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")  # answers may be a member's own

    async def _execute(self, *args: Any, **kwargs: Any) -> Any:
        # One budget for every database operation of the request (PyMongo's client-side
        # timeout): a database that hangs instead of dying costs a request this long at most,
        # then it answers 503 (v1) or the envelope's error (legacy), never a long wait.
        with pymongo.timeout(self.database_budget or self.settings.get("request_timeout", DEFAULT_REQUEST_TIMEOUT)):
            return await super()._execute(*args, **kwargs)

    async def prepare(self) -> None:
        """Resolve the login key, if the request carries one, to the member it belongs to; on a
        gift route, with the gift and the member's join in the same database round trip (or,
        for a join, the gift alone, shared with the other requests reading it then)."""
        self.refuse_while_database_away()
        order_id = self.requested_order_id() if self.loads_gift else None
        if order_id is not None and self.loads_join:
            self.current_user, self.gift, self.join = await self.gifts.for_member(self.login_key(), order_id)
        elif order_id is not None:  # a join: the member's key and the gift, each read with others'
            self.current_user, self.gift = await asyncio.gather(self.accounts.member_for(self.login_key()),
                                                                self.gifts.shared_get(order_id))
        else:
            self.current_user = await self.accounts.member_for(self.login_key())
        logs.MEMBER_ID.set(self.current_user)

    def refuse_while_database_away(self) -> None:
        """While the database is known to be away, a 503 at once (no request waits out its
        budget): PyMongo's monitor says so without a round trip."""
        if not self.health.database_available:
            raise DatabaseUnavailable()

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

    def query_value(self, name: str, default: str | None = None) -> str | None:
        """A query parameter, or `default` when absent; InvalidInput when it is given more than
        once (which one was meant is anyone's guess)."""
        values = self.get_query_arguments(name)
        if len(values) > 1:
            raise InvalidInput(f"参数 {name} 只能给一次")
        return values[0] if values else default

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
        body = params.json_document(self.request.body, "请求体")
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

    def error_answer(self, status_code: int, **kwargs: Any) -> None:
        """An error in this route's style (JSON; the seed's envelope on legacy routes)."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if database_away(exc):
            exc = DatabaseUnavailable()
        if isinstance(exc, DatabaseUnavailable):
            self.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
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


class UnknownHostHandler(BaseHandler):
    """A request for a host name this server does not answer to: 400, whatever its path."""

    async def prepare(self) -> None:
        raise web.HTTPError(400, "不支持的 Host")


