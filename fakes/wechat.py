"""A local stand-in for api.weixin.qq.com that speaks its real endpoints, errors included.

Runs on its own thread and event loop, so in-process apps and server subprocesses alike reach
it over a socket. Behaviour is steered per code or by queueing failures:

- `/sns/jscode2session`: the openid is `o_<code>`; code `bad` -> errcode 40029,
  `busy` -> -1, `http500` -> HTTP 500, `slow` -> answers after `slow_seconds`.
- `fail_next(path, answer)` makes the next call to `path` answer `answer` (a dict, an int
  HTTP status, or "timeout").
- `/cgi-bin/stable_token`: one access token at a time, valid `token_lifetime` seconds; the normal
  mode returns the current one while it is valid, `force_refresh` replaces it (the old one then
  answers 40001). `expire_token()` expires it now (42001), `expire_token_after_sends(n)` after n
  more delivered messages (expiry in the middle of a batch).
- `/cgi-bin/message/subscribe/send`: checks the token, the template id and every field against
  WeChat's per-type limits (47003 naming the field), answers 43101 for `refuse(openid)` (and,
  with `one_time`, for a message already delivered, as a used-up subscription does), and
  records what it delivered (`delivered`, `delivered_to(openid)`). `send_delay` slows answers.
- `/wxa/msg_sec_check` (version 2): checks the token and the openid (one this fake issued,
  `o_...`, else 40003); text holding one of `risky_words` answers `risky` (label 20006), one of
  `review_words` `review` (label 21000), anything else `pass` (label 100), with `detail` and
  `trace_id` as WeChat gives them. `checked` lists the texts seen.
- `/wxa/getuserriskrank`: the token, the appid and the openid checked; `risk_rank` from
  `risk_ranks` (openid -> 0..4, default 0).
- `outage = True`: every endpoint answers `outage_answer` (an HTTP status, default 503) after
  `outage_delay` seconds, until switched back.
"""
import asyncio
import base64
import hashlib
import json
import itertools
import os
import re
import time
from collections import defaultdict, deque

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from tornado import web

from fakes.served import ServedFake

APPID = "wx_test_appid"
SECRET = "test-app-secret"


# Value limits of subscribe-message fields by type, as WeChat checks them (characters).
FIELD_LIMITS = {"thing": 20, "short_thing": 5, "phrase": 5, "name": 20, "number": 32, "letter": 32,
                "symbol": 5, "character_string": 32, "phone_number": 17, "car_number": 8,
                "amount": 32, "time": 32, "date": 32}
MINIPROGRAM_STATES = ("developer", "trial", "formal")


def field_type(key: str) -> str:
    """`thing12` -> `thing`."""
    return re.sub(r"\d+$", "", key)


def field_error(key: str, value: object) -> str | None:
    """Why WeChat would refuse this field's value (47003), or None."""
    if not isinstance(value, str):
        return f"argument invalid! data.{key}.value invalid"
    kind = field_type(key)
    limit = FIELD_LIMITS.get(kind)
    if limit is None:
        return f"argument invalid! data.{key} unknown type"
    if kind == "name" and any(ord(c) > 127 for c in value):
        limit = 10  # ten Chinese characters, or twenty letters
    if not value or len(value) > limit:
        return f"argument invalid! data.{key}.value invalid"
    if kind == "phrase" and not all("\u4e00" <= c <= "\u9fff" for c in value):
        return f"argument invalid! data.{key}.value invalid"
    return None


def session_key_for(code: str) -> str:
    """The session key the fake hands out for a code (16 bytes, base64, as WeChat does)."""
    return base64.b64encode(hashlib.sha256(b"sk:" + code.encode()).digest()[:16]).decode()


def encrypt_user_data(session_key: str, iv: str, data: dict) -> str:
    """What WeChat hands the mini-program as `encryptedData`: the JSON, PKCS#7-padded, AES-128-CBC
    with the member's session key, base64."""
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(data, ensure_ascii=False).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(base64.b64decode(session_key)), modes.CBC(base64.b64decode(iv))).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def group_enter_info(code: str, opengid: str | None, age_seconds: float = 0, appid: str = APPID) -> dict:
    """What `wx.getGroupEnterInfo` gives the member who logged in with `code`, opening a shared
    card: `{iv, encryptedData}`, holding the group's `opengid` (None: opened from a one-to-one
    chat, `open_single_roomid` instead) and a watermark `age_seconds` old."""
    iv = base64.b64encode(os.urandom(16)).decode()
    where = {"opengid": opengid} if opengid else {"open_single_roomid": "single_" + hashlib.sha256(
        code.encode()).hexdigest()[:16]}
    data = {**where, "watermark": {"appid": appid, "timestamp": int(time.time() - age_seconds)}}
    return {"iv": iv, "encryptedData": encrypt_user_data(session_key_for(code), iv, data)}


class FakeWeChat(ServedFake):
    """The fake server and what it has seen."""

    name = "fake-wechat"

    def __init__(self) -> None:
        self.calls: dict[str, list[dict]] = defaultdict(list)
        self.queued: dict[str, deque] = defaultdict(deque)
        self.slow_seconds = 6.0
        # Access tokens and subscribe messages.
        self.token_lifetime = 7200
        self.token: str | None = None
        self.token_expires = 0.0
        self.retired_tokens: set[str] = set()
        self._token_serial = itertools.count(1)
        self._expire_after_sends: int | None = None
        self.delivered: list[dict] = []
        self.refused: set[str] = set()
        # True: like WeChat, a member's acceptance is good for one message, so the same message
        # (user, template, page) sent again answers 43101. Off by default, so that tests see a
        # message sent twice.
        self.one_time = False
        self.send_delay = 0.0
        # Content security and user risk.
        self.risky_words = {"赌博", "违禁词"}
        self.review_words = {"待审"}
        self.checked: list[dict] = []
        self.risk_ranks: dict[str, int] = {}
        self.outage = False
        self.outage_answer: int = 503
        self.outage_delay = 0.0
        super().__init__()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, path: str, answer: dict | int | str, times: int = 1) -> None:
        for _ in range(times):
            self.queued[path].append(answer)

    def expire_token(self) -> None:
        """The current access token expires now: calls with it answer 42001."""
        self.token_expires = 0.0

    def expire_token_after_sends(self, count: int) -> None:
        """The current access token expires after `count` more delivered messages."""
        self._expire_after_sends = count

    def refuse(self, openid: str) -> None:
        """This user has no subscription left: sends to them answer 43101."""
        self.refused.add(openid)

    def delivered_to(self, openid: str) -> list[dict]:
        return [m for m in self.delivered if m["touser"] == openid]

    def stable_token_calls(self, forced: bool | None = None) -> list[dict]:
        """The stable_token requests seen (all, or only forced / only normal ones)."""
        calls = [json.loads(c["body"] or b"{}") for c in self.calls["/cgi-bin/stable_token"]]
        return [c for c in calls if forced is None or bool(c.get("force_refresh")) == forced]

    def _new_token(self) -> str:
        if self.token:
            self.retired_tokens.add(self.token)
        self.token = f"token-{next(self._token_serial)}-" + base64.b16encode(hashlib.sha256(
            str(time.monotonic()).encode()).digest()[:8]).decode()
        self.token_expires = time.monotonic() + self.token_lifetime
        return self.token

    def routes(self) -> list:
        fake = self

        class Endpoint(web.RequestHandler):
            path = ""

            async def prepare(self) -> None:
                fake.calls[self.path].append({"query": {k: self.get_argument(k) for k in self.request.arguments},
                                              "body": self.request.body})
                if fake.outage:
                    await asyncio.sleep(fake.outage_delay)
                    self.set_status(fake.outage_answer)
                    self.finish("service unavailable")
                    return
                queue = fake.queued[self.path]
                if queue:
                    answer = queue.popleft()
                    if answer == "timeout":
                        await asyncio.sleep(fake.slow_seconds)
                        answer = {"errcode": 0}
                    if isinstance(answer, int):
                        self.set_status(answer)
                        self.finish("upstream error")
                    else:
                        self.finish(json.dumps(answer))

        class Code2Session(Endpoint):
            path = "/sns/jscode2session"

            async def get(self) -> None:
                if self.get_argument("appid", "") != APPID or self.get_argument("secret", "") != SECRET:
                    self.finish(json.dumps({"errcode": 40013, "errmsg": "invalid appid"}))
                    return
                if self.get_argument("grant_type", "") != "authorization_code":
                    self.finish(json.dumps({"errcode": 40002, "errmsg": "invalid grant_type"}))
                    return
                code = self.get_argument("js_code", "")
                if code == "bad":
                    self.finish(json.dumps({"errcode": 40029, "errmsg": "invalid code"}))
                elif code == "busy":
                    self.finish(json.dumps({"errcode": -1, "errmsg": "system error"}))
                elif code == "http500":
                    self.set_status(500)
                    self.finish("server error")
                else:
                    if code == "slow":
                        await asyncio.sleep(fake.slow_seconds)
                    # WeChat really answers text/plain here.
                    self.set_header("Content-Type", "text/plain")
                    self.finish(json.dumps({"openid": "o_" + code, "session_key": session_key_for(code)}))

        class StableToken(Endpoint):
            path = "/cgi-bin/stable_token"

            async def post(self) -> None:
                try:
                    body = json.loads(self.request.body)
                except ValueError:
                    self.finish(json.dumps({"errcode": 47001, "errmsg": "data format error"}))
                    return
                if body.get("grant_type") != "client_credential":
                    self.finish(json.dumps({"errcode": 40002, "errmsg": "invalid grant_type"}))
                    return
                if body.get("appid") != APPID or body.get("secret") != SECRET:
                    self.finish(json.dumps({"errcode": 40125, "errmsg": "invalid appsecret"}))
                    return
                if body.get("force_refresh") or fake.token is None or time.monotonic() >= fake.token_expires:
                    fake._new_token()
                left = max(1, int(fake.token_expires - time.monotonic()))
                self.finish(json.dumps({"access_token": fake.token, "expires_in": left}))

        class SubscribeSend(Endpoint):
            path = "/cgi-bin/message/subscribe/send"

            async def post(self) -> None:
                if fake.send_delay:
                    await asyncio.sleep(fake.send_delay)
                token = self.get_argument("access_token", "")
                if token != fake.token or token in fake.retired_tokens:
                    self.answer(40001, "invalid credential, access_token is invalid or not latest")
                    return
                if time.monotonic() >= fake.token_expires:
                    self.answer(42001, "access_token expired")
                    return
                try:
                    body = json.loads(self.request.body)
                except ValueError:
                    self.answer(47001, "data format error")
                    return
                if not body.get("touser"):
                    self.answer(40003, "invalid openid")
                    return
                if not body.get("template_id"):
                    self.answer(40037, "invalid template_id")
                    return
                if body.get("miniprogram_state", "formal") not in MINIPROGRAM_STATES:
                    self.answer(47003, "argument invalid! miniprogram_state invalid")
                    return
                data = body.get("data")
                if not isinstance(data, dict) or not data:
                    self.answer(47003, "argument invalid! data invalid")
                    return
                for key, field in data.items():
                    problem = field_error(key, field.get("value") if isinstance(field, dict) else None)
                    if problem:
                        self.answer(47003, problem)
                        return
                if body["touser"] in fake.refused:
                    self.answer(43101, "user refuse to accept the msg")
                    return
                if fake.one_time and any((m["touser"], m["template_id"], m.get("page")) ==
                                         (body["touser"], body["template_id"], body.get("page"))
                                         for m in fake.delivered):
                    self.answer(43101, "user refuse to accept the msg")
                    return
                fake.delivered.append(body)
                if fake._expire_after_sends is not None:
                    fake._expire_after_sends -= 1
                    if fake._expire_after_sends <= 0:
                        fake._expire_after_sends = None
                        fake.expire_token()
                self.answer(0, "ok", msgid=len(fake.delivered))

            def answer(self, errcode: int, errmsg: str, **extra) -> None:
                self.finish(json.dumps({"errcode": errcode, "errmsg": errmsg, **extra}))

        class Authorised(Endpoint):
            """A call with the access token in its query and a JSON body."""

            def body_if_authorised(self) -> dict | None:
                token = self.get_argument("access_token", "")
                if token != fake.token or token in fake.retired_tokens:
                    self.answer(40001, "invalid credential, access_token is invalid or not latest")
                elif time.monotonic() >= fake.token_expires:
                    self.answer(42001, "access_token expired")
                else:
                    try:
                        body = json.loads(self.request.body)
                    except ValueError:
                        body = None
                    if not isinstance(body, dict):
                        self.answer(47001, "data format error")
                    elif not re.fullmatch(r"o_[\w.-]+", str(body.get("openid", ""))):
                        self.answer(40003, "invalid openid")
                    else:
                        return body
                return None

            def answer(self, errcode: int, errmsg: str, **extra) -> None:
                self.finish(json.dumps({"errcode": errcode, "errmsg": errmsg, **extra}, ensure_ascii=False))

        class MsgSecCheck(Authorised):
            path = "/wxa/msg_sec_check"

            async def post(self) -> None:
                body = self.body_if_authorised()
                if body is None:
                    return
                content, scene = body.get("content"), body.get("scene")
                if body.get("version") != 2 or scene not in (1, 2, 3, 4) or not isinstance(content, str):
                    self.answer(47001, "data format error")
                    return
                fake.checked.append(body)
                if any(word in content for word in fake.risky_words):
                    suggest, label = "risky", 20006
                elif any(word in content for word in fake.review_words):
                    suggest, label = "review", 21000
                else:
                    suggest, label = "pass", 100
                detail = [{"strategy": "content_model", "errcode": 0, "suggest": suggest, "label": label, "prob": 90},
                          {"strategy": "keyword", "errcode": 0}]
                self.answer(0, "ok", detail=detail, trace_id=f"trace-{len(fake.checked)}",
                            result={"suggest": suggest, "label": label})

        class UserRiskRank(Authorised):
            path = "/wxa/getuserriskrank"

            async def post(self) -> None:
                body = self.body_if_authorised()
                if body is None:
                    return
                if body.get("appid") != APPID:
                    self.answer(43104, "appid does not match openid")
                elif body.get("scene") not in (0, 1) or not body.get("client_ip"):
                    self.answer(47001, "data format error")
                else:
                    self.answer(0, "getuserriskrank succ", risk_rank=fake.risk_ranks.get(body["openid"], 0),
                                unoin_id=len(fake.calls[self.path]))

        return [(Code2Session.path, Code2Session), (StableToken.path, StableToken),
                (SubscribeSend.path, SubscribeSend), (MsgSecCheck.path, MsgSecCheck),
                (UserRiskRank.path, UserRiskRank)]
