"""The WeChat HTTP API, with Tornado's async HTTP client (no threads, no blocking the loop).

Every call answers JSON with `errcode` (0 or absent on success). Secrets are sent in query
strings as WeChat requires, so URLs are never logged."""
import json
import logging
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from lottery.accounts import Session
from lottery.errors import UpstreamFailure

log = logging.getLogger(__name__)


class WeChatError(UpstreamFailure):
    """WeChat answered, with a non-zero errcode (or not JSON / not 2xx: errcode None)."""

    def __init__(self, errcode: int | None, errmsg: str, http_status: int | None = None,
                 network: bool = False) -> None:
        super().__init__(f"errcode {errcode}: {errmsg}" if errcode is not None else errmsg)
        self.errcode = errcode
        self.errmsg = errmsg
        self.http_status = http_status  # a non-2xx answer
        self.network = network  # no answer: refused, reset, timed out


class WeChatClient:
    """One WeChat mini-program's API credentials and an HTTP client."""

    def __init__(self, appid: str, secret: str, base_url: str = "https://api.weixin.qq.com",
                 timeout: float = 5.0, http: AsyncHTTPClient | None = None) -> None:
        self.appid = appid
        self.secret = secret
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = http or AsyncHTTPClient()

    async def call(self, path: str, query: dict | None = None, body: dict | None = None) -> dict:
        """GET (no body) or POST JSON; returns the decoded answer or raises WeChatError."""
        url = self.base_url + path + ("?" + urlencode(query) if query else "")
        request = HTTPRequest(
            url, method="POST" if body is not None else "GET",
            body=json.dumps(body, ensure_ascii=False).encode() if body is not None else None,
            headers={"Content-Type": "application/json"} if body is not None else None,
            connect_timeout=self.timeout, request_timeout=self.timeout)
        try:
            response = await self.http.fetch(request)
        except HTTPClientError as exc:
            if exc.code == 599:  # Tornado's code for a timeout or a closed stream
                raise WeChatError(None, f"WeChat {path} did not answer: {exc.message}",
                                  network=True) from exc
            raise WeChatError(None, f"HTTP {exc.code} from WeChat {path}", http_status=exc.code) from exc
        except (OSError, TimeoutError) as exc:
            raise WeChatError(None, f"WeChat {path} unreachable: {type(exc).__name__}",
                              network=True) from exc
        try:
            answer = json.loads(response.body)
        except ValueError as exc:
            raise WeChatError(None, f"WeChat {path} answered something that is not JSON") from exc
        if not isinstance(answer, dict):
            raise WeChatError(None, f"WeChat {path} answered an unexpected shape")
        if answer.get("errcode", 0) != 0:
            raise WeChatError(answer.get("errcode"), str(answer.get("errmsg", "")))
        return answer

    async def stable_token(self, force_refresh: bool = False) -> tuple[str, int]:
        """`cgi-bin/stable_token`: the access token and its remaining lifetime in seconds.

        Unlike the old `cgi-bin/token`, the normal mode hands every caller the same token and
        never invalidates one another process holds; `force_refresh` does (20 a day, 30 s apart)."""
        answer = await self.call("/cgi-bin/stable_token", body={
            "grant_type": "client_credential", "appid": self.appid, "secret": self.secret,
            "force_refresh": force_refresh})
        token, expires_in = answer.get("access_token"), answer.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int):
            raise WeChatError(None, "stable_token answered without access_token/expires_in")
        return token, expires_in

    async def send_subscribe(self, access_token: str, message: dict) -> dict:
        """`cgi-bin/message/subscribe/send` of one message (`touser`, `template_id`, `page`,
        `data`, `miniprogram_state`, `lang`); WeChatError unless errcode is 0."""
        return await self.call("/cgi-bin/message/subscribe/send",
                               query={"access_token": access_token}, body=message)

    async def msg_sec_check(self, access_token: str, openid: str, scene: int, content: str) -> dict:
        """`wxa/msg_sec_check`, version 2: `{result: {suggest: pass|review|risky, label}, detail,
        trace_id}` for a text `openid` wrote (who must have used the mini-program within two
        hours); WeChatError unless errcode is 0."""
        return await self.call("/wxa/msg_sec_check", query={"access_token": access_token},
                               body={"openid": openid, "scene": scene, "version": 2, "content": content})

    async def user_risk_rank(self, access_token: str, openid: str, scene: int, client_ip: str) -> int:
        """`wxa/getuserriskrank`: the member's risk rank, 0 (lowest) to 4."""
        answer = await self.call("/wxa/getuserriskrank", query={"access_token": access_token}, body={
            "appid": self.appid, "openid": openid, "scene": scene, "client_ip": client_ip})
        rank = answer.get("risk_rank")
        if isinstance(rank, bool) or not isinstance(rank, int):
            raise WeChatError(None, "getuserriskrank answered without risk_rank")
        return rank

    async def code2session(self, code: str) -> Session:
        """`sns/jscode2session`: a wx.login code to the member's openid and session key."""
        answer = await self.call("/sns/jscode2session", query={
            "appid": self.appid, "secret": self.secret, "js_code": code,
            "grant_type": "authorization_code"})
        openid, session_key = answer.get("openid"), answer.get("session_key")
        if not isinstance(openid, str) or not openid or not isinstance(session_key, str):
            raise WeChatError(None, "jscode2session answered without openid/session_key")
        return Session(openid, session_key)
