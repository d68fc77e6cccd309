"""The one base handler: JSON bodies, login keys, and errors.

Two reply styles share it. Legacy routes (the seed's mini-program) always answer HTTP 200 with
`{"code", "message", "data"}`; v1 routes answer real status codes with
`{"error": {"code", "message"}}`."""
import hmac
import json
import logging
from typing import Any

from tornado import web

from lottery.accounts import Accounts
from lottery.errors import BodyTooLarge, Forbidden, InvalidInput, LoginExpired, LotteryError
from lottery.gifts import Gifts

log = logging.getLogger("gift_lottery.http")

MAX_JSON_BODY = 64 * 1024


class BaseHandler(web.RequestHandler):
    """Shared by every HTTP handler."""

    legacy = False  # legacy routes answer the seed's envelope

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")

    @property
    def accounts(self) -> Accounts:
        return self.settings["accounts"]

    @property
    def gifts(self) -> Gifts:
        return self.settings["gifts"]

    def json_body(self) -> dict:
        """The request body as a JSON object, or InvalidInput."""
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

    def bearer_token(self) -> str | None:
        header = self.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    async def current_member(self) -> str:
        """The member behind `Authorization: Bearer <login_key>`, or 401."""
        return await self.accounts.authenticate(self.bearer_token())

    def require_admin(self) -> None:
        """Admin routes exist only when ADMIN_TOKEN is set, and need it as the bearer token."""
        expected = self.settings.get("admin_token")
        if not expected:
            raise web.HTTPError(404)
        given = self.bearer_token() or ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Forbidden("管理令牌无效")

    def reply(self, data: Any = None, code: str = "success", message: str = "",
              status: int = 200) -> None:
        """A successful answer in this route's style."""
        self.set_status(status)
        if self.legacy:
            data = {"code": code, "message": message, "data": data}
        self.finish(json.dumps(data, ensure_ascii=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, LotteryError):
            code, message, status = exc.code, exc.message, exc.status
        elif isinstance(exc, web.HTTPError) and status_code < 500:
            code, message, status = "http_" + str(status_code), exc.log_message or self._reason, status_code
        else:
            code, message, status = "internal", "服务器内部错误", 500
        if self.legacy and (status_code < 500 or isinstance(exc, LotteryError)):
            # The seed's client reads `code`, so every known error is a 200 "error".
            self.set_status(200)
            self.finish(json.dumps({"code": "error", "message": message, "data": None},
                                   ensure_ascii=False))
            return
        self.set_status(status)
        self.finish(json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False))

    def _handle_request_exception(self, e: BaseException) -> None:
        # Domain errors are the client's mistake: answer them, log one line, no traceback.
        if isinstance(e, LotteryError):
            if not self._finished:
                self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
            log.warning("%s %s -> %s", self.request.method, self.request.path, e.code)
            return
        super()._handle_request_exception(e)


class NotFoundHandler(BaseHandler):
    """The catch-all: JSON 404 for any unknown path."""

    def prepare(self) -> None:
        raise web.HTTPError(404, "接口不存在")


def log_request(handler: web.RequestHandler) -> None:
    """Access log without the query string: `/ws?login_key=...` must never reach a log."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    logging.getLogger("tornado.access").log(
        level, "%d %s %s %.1fms", status, handler.request.method, handler.request.path,
        1000.0 * handler.request.request_time())
