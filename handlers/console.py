"""The operator's console under /admin: server-rendered pages (templates/console/) and HTML forms.

Every console request carries its session in the `console_session` cookie (HttpOnly,
SameSite=Strict, Secure except on loopback, path /admin); the session and its account are read
on every request (lottery/operators.py), so a disabled account stops at once. Every POST carries
Tornado's XSRF token (`_xsrf`, checked against its cookie), here and only here: the v1 API,
the seed's routes and the bearer-token admin API have no cookies to protect. Forms answer 303 to
the page they belong to, or the page again with the refusal (its status a 4xx).

This module: the base, signing in and out, my account (password, TOTP), accounts and the audit
log. handlers/console_shop.py: today, catalogue, orders, shipping, gifts."""
import os
import re
from typing import Any
from urllib.parse import urlencode

from tornado import web

from handlers.application import host_name
from handlers.base import BaseHandler
from handlers.errors import status_of
from lottery import clock
from lottery.audit import Actor
from lottery.errors import Forbidden, InvalidInput, LotteryError
from lottery.operators import ROLE_NAMES, ROLES, Operator
from lottery.validate import ID_PATTERN, is_loopback

TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "templates")
SESSION_COOKIE = "console_session"
MAX_FIELD = 2000
INTEGER = re.compile(r"-?[0-9]{1,9}")  # ASCII digits only (str.isdigit takes others)
YUAN = re.compile(r"[0-9]{1,7}(\.[0-9]{1,2})?")
# What a form's success says, by the code in `?done=` (never free text from the URL).
DONE = {
    "signed_in": "已登录", "category": "已添加分类", "product": "已保存商品", "image": "图片已上传",
    "shipped": "已标记发货", "delivered": "已确认送达", "refund": "已提交退款，退款将由系统发往微信支付",
    "queried": "已向微信支付查询", "draw": "已尝试开奖", "role": "已修改角色", "disabled": "已停用账号",
    "enabled": "已启用账号", "password": "密码已修改，其他登录已退出", "totp": "已开启动态码",
}


def yuan(fen: object) -> str:
    """Fen as the pages show money: ¥12.30."""
    return f"¥{int(fen or 0) / 100:.2f}" if isinstance(fen, int) else "¥0.00"


def beijing(value: object) -> str:
    """A stored time (datetime or ISO text) in Beijing time, to the minute; "—" when absent."""
    if not value:
        return "—"
    moment = clock.parse_time(value) if isinstance(value, str) else value
    return clock.shanghai_text(moment)[:16]


def change_text(value: object) -> str:
    """An audit entry's before or after, as the log page shows it: `price: 8990, on_sale: true`."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {change_text(v) or '—'}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(change_text(v) for v in value) + "]"
    if isinstance(value, bool):
        return "是" if value else "否"
    return str(value)


class ConsoleHandler(BaseHandler):
    """A console page or form. `owner_only`: staff get 403. `public`: no session needed."""

    owner_only = False
    public = False
    operator: Operator | None = None

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Type", "text/html; charset=UTF-8")

    async def prepare(self) -> None:
        self.current_user = None
        self.refuse_while_database_away()
        if self.request.method not in ("GET", "HEAD"):
            self.check_xsrf_cookie()  # 403 without the page's token: another site cannot post here
        self.operator = await self.operators.session(self.get_cookie(SESSION_COOKIE))
        if self.operator is None and not self.public:
            if self.request.method in ("GET", "HEAD"):
                self.redirect("/admin/login?" + urlencode({"next": self.request.path}), status=303)
                return
            raise web.HTTPError(401, "请先登录")
        if self.owner_only and not self.operator.is_owner:
            raise Forbidden("只有店主可以进行此操作")

    # Cookies: HttpOnly, SameSite=Strict, Secure unless the console is reached on loopback
    # (http://127.0.0.1 in development, where a Secure cookie would never come back).

    def set_cookie(self, name: str, value: str | bytes, **kwargs: Any) -> None:  # type: ignore[override]
        kwargs.setdefault("httponly", True)
        kwargs.setdefault("samesite", "Strict")
        kwargs.setdefault("secure", not is_loopback(host_name(self.request.host)))
        super().set_cookie(name, value, **kwargs)

    def start_session(self, token: str) -> None:
        self.set_cookie(SESSION_COOKIE, token, path="/admin")

    # Reading forms: text only, bounded, no control characters.

    def field(self, name: str, max_len: int = 200, required: bool = True) -> str:
        values = self.request.body_arguments.get(name, [])
        if len(values) > 1:
            raise InvalidInput(f"{name} 只能给一次")
        value = self.decode_argument(values[0], name).strip() if values else ""
        if len(value) > min(max_len, MAX_FIELD) or any(ord(c) < 32 and c not in "\r\n\t" for c in value):
            raise InvalidInput(f"{name} 过长或含有非法字符")
        if required and not value:
            raise InvalidInput(f"请填写 {name}")
        return value

    def number(self, name: str, low: int, high: int, required: bool = True) -> int | None:
        text = self.field(name, 12, required)
        if not text:
            return None
        if not INTEGER.fullmatch(text) or not low <= int(text) <= high:
            raise InvalidInput(f"{name} 须为 {low} 到 {high} 之间的整数")
        return int(text)

    def fen(self, name: str, required: bool = True) -> int | None:
        """An amount typed in yuan (12.30) as fen."""
        text = self.field(name, 12, required)
        if not text:
            return None
        if not YUAN.fullmatch(text):
            raise InvalidInput(f"{name} 须为金额（元），最多两位小数")
        whole, _, cents = text.partition(".")
        fen = int(whole) * 100 + int(cents.ljust(2, "0"))
        if not 1 <= fen <= 100_000_000:
            raise InvalidInput(f"{name} 须在 0.01 到 1000000 元之间")
        return fen

    def query_text(self, name: str, max_len: int = 64) -> str:
        value = (self.query_value(name, "") or "").strip()
        if len(value) > max_len:
            raise InvalidInput(f"{name} 过长")
        return value

    @property
    def actor(self) -> Actor:
        return Actor(self.operator.name, self.request_id, self.operator.operator_id)

    # Answers

    def page(self, template: str, http_status: int = 200, **values: Any) -> None:
        self.set_status(http_status)
        done = DONE.get(self.query_value("done", "") or "") if self.request.method == "GET" else None
        self.render(f"console/{template}", me=self.operator, done=done, yuan=yuan, beijing=beijing,
                    role_names=ROLE_NAMES, change_text=change_text, **values)

    def done(self, where: str, code: str) -> None:
        self.redirect(f"{where}{'&' if '?' in where else '?'}done={code}", status=303)

    def error_answer(self, status_code: int, **kwargs: Any) -> None:
        """A refusal as a page: the domain's message, Tornado's XSRF refusal in words."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, LotteryError):
            status, message = status_of(exc), exc.message
        elif isinstance(exc, web.HTTPError) and status_code < 500:
            status = status_code
            xsrf = status == 403 and "_xsrf" in (exc.log_message or "")
            message = "页面已过期或请求来源不明，请刷新页面后重试" if xsrf else exc.log_message or self._reason
        else:
            status, message = 500, "服务器内部错误"
        if status == 503:
            self.set_header("Retry-After", "2")
        self.set_status(status)
        self.render("console/message.html", me=self.operator, message=message, back=self.request.path,
                    done=None, yuan=yuan, beijing=beijing, role_names=ROLE_NAMES)


class SignInHandler(ConsoleHandler):
    public = True

    def get(self) -> None:
        """The sign-in form."""
        self.page("login.html", error=None, name="", next=self._next())

    async def post(self) -> None:
        """`name, password, code?` -> a session cookie and 303 to where the operator was going."""
        name = self.field("name", 64, required=False)
        try:
            token = await self.operators.sign_in(name, self.field("password", 256, required=False),
                                                 self.client_address(), self.field("code", 16, required=False))
        except LotteryError as exc:
            self.page("login.html", http_status=status_of(exc), error=exc.message, name=name, next=self._next())
            return
        self.start_session(token)
        self.redirect(self._next(), status=303)

    def _next(self) -> str:
        """Back to a console page after signing in; never elsewhere."""
        target = self.get_argument("next", "/admin")
        return target if target.startswith("/admin") and "//" not in target and "\\" not in target else "/admin"

    def client_address(self) -> str:
        header = self.settings.get("console_address_header")
        return (self.request.headers.get(header, "") if header else "")[:64] or self.request.remote_ip or ""


class SignOutHandler(ConsoleHandler):
    async def post(self) -> None:
        """End the session on the server, and forget its cookie."""
        await self.operators.sign_out(self.get_cookie(SESSION_COOKIE))
        self.clear_cookie(SESSION_COOKIE, path="/admin")
        self.redirect("/admin/login", status=303)


class MeHandler(ConsoleHandler):
    def get(self) -> None:
        """My account: change my password; an owner turns on the TOTP second factor."""
        secret = self.operators.new_totp_secret()
        self.page("me.html", secret=secret, totp_uri=self.operators.totp_uri(secret, self.operator.name))

    async def post(self) -> None:
        """`action=password` (current, new) or `action=totp` (secret, code)."""
        action = self.field("action", 16)
        if action == "password":
            token = await self.admin_actions.change_password(self.actor, self.operator, self.field("current", 256),
                                                             self.field("new", 256))
            self.start_session(token)
            self.done("/admin/me", "password")
        elif action == "totp":
            await self.admin_actions.enable_totp(self.actor, self.operator, self.field("secret", 64),
                                                 self.field("code", 16))
            self.done("/admin/me", "totp")
        else:
            raise InvalidInput("未知操作")


class AccountsHandler(ConsoleHandler):
    owner_only = True

    async def get(self) -> None:
        """Every account: role, disabled or not, TOTP on or not."""
        self.page("accounts.html", accounts=await self.operators.listed(), invited=None, roles=ROLES)

    async def post(self) -> None:
        """Invite: `name, role` -> the account and its first password, shown once."""
        operator, password = await self.admin_actions.invite(self.actor, self.field("name", 64),
                                                             self.field("role", 16))
        self.page("accounts.html", http_status=201, accounts=await self.operators.listed(),
                  invited={"name": operator["name"], "password": password}, roles=ROLES)


class AccountHandler(ConsoleHandler):
    owner_only = True

    async def post(self, operator_id: str) -> None:
        """`action=role` (role), `action=disable` or `action=enable`."""
        if not ID_PATTERN.match(operator_id):
            raise InvalidInput("账号格式错误")
        action = self.field("action", 16)
        if action == "role":
            await self.admin_actions.change_role(self.actor, self.operator, operator_id, self.field("role", 16))
            self.done("/admin/accounts", "role")
        elif action in ("disable", "enable"):
            await self.admin_actions.set_disabled(self.actor, self.operator, operator_id, action == "disable")
            self.done("/admin/accounts", "disabled" if action == "disable" else "enabled")
        else:
            raise InvalidInput("未知操作")


class AuditHandler(ConsoleHandler):
    owner_only = True

    async def get(self) -> None:
        """The audit log, newest first, 50 a page (`?cursor=`)."""
        self.page("audit.html", found=await self.audit.page(self.query_text("cursor", 32)))


default_handlers = [
    (r"/admin/login", SignInHandler),
    (r"/admin/logout", SignOutHandler),
    (r"/admin/me", MeHandler),
    (r"/admin/accounts", AccountsHandler),
    (r"/admin/accounts/([A-Za-z0-9_-]{1,64})", AccountHandler),
    (r"/admin/audit", AuditHandler),
]
