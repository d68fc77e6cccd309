"""WeChat's security APIs with the shared access token: the text check (`msg_sec_check`,
version 2) and the user risk rank (`getuserriskrank`). What the domain asks for
(lottery/moderation.py's `TextChecker`, lottery/risk.py's `RiskRanker`); a rejected token is
replaced once, as the notification worker does."""
from typing import Awaitable, Callable, TypeVar

from lottery.errors import UpstreamFailure
from notify.tokens import AccessTokens
from wechat.client import WeChatClient, WeChatError

TOKEN_REJECTED = (40001, 42001)
# getuserriskrank's scene for marketing activities (营销作弊); 0 is registration.
RISK_SCENE_MARKETING = 1
VERDICTS = ("pass", "review", "risky")

T = TypeVar("T")


class WeChatSecurity:
    def __init__(self, wechat: WeChatClient, tokens: AccessTokens) -> None:
        self.wechat = wechat
        self.tokens = tokens

    async def _with_token(self, call: Callable[[str], Awaitable[T]]) -> T:
        token = await self.tokens.get()
        try:
            return await call(token)
        except WeChatError as exc:
            if exc.errcode not in TOKEN_REJECTED:
                raise
        return await call(await self.tokens.replace(token))

    async def check_text(self, openid: str, scene: int, text: str) -> str:
        """pass, review or risky; UpstreamFailure when WeChat refuses the call or does not answer."""
        answer = await self._with_token(lambda token: self.wechat.msg_sec_check(token, openid, scene, text))
        suggest = (answer.get("result") or {}).get("suggest")
        if suggest not in VERDICTS:
            raise UpstreamFailure("msg_sec_check answered without result.suggest")
        return suggest

    async def risk_rank(self, openid: str, client_ip: str) -> int:
        """The member's risk rank for a marketing activity; UpstreamFailure when unknown."""
        return await self._with_token(
            lambda token: self.wechat.user_risk_rank(token, openid, RISK_SCENE_MARKETING, client_ip))
