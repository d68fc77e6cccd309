"""Members' display names and avatars: from the seed's encrypted getUserInfo, or from the
nickname and avatar fill-in components (WeChat's getUserInfo answers "微信用户" and a grey
avatar since November 2022). A change is copied onto the member's gifts (`sender`), which is
what the join page shows."""
import logging
import unicodedata
from typing import Callable

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock
from lottery.errors import InvalidInput, LoginExpired, MissingParams
from lottery.images import MAX_IMAGE_URL, ImageSources
from lottery.moderation import Moderation
from lottery.storage import gifts, members

log = logging.getLogger(__name__)

# (session_key, iv, encryptedData) -> the decrypted JSON; DecryptionFailed or WrongAppid.
UserDataDecrypter = Callable[[str, str, str], dict]

MAX_NICKNAME = 32
# What WeChat's getUserInfo returns for everyone since November 2022.
ANONYMOUS_NICKNAME = "微信用户"


def clean_nickname(value: object, strict: bool = True) -> str:
    """A nickname: trimmed, no control characters, 1 to 32 characters. Not strict: cut to fit."""
    if not isinstance(value, str):
        if strict:
            raise InvalidInput("参数 nickname 必须是字符串")
        return ""
    text = "".join(c for c in value if unicodedata.category(c)[0] != "C" or c == " ").strip()
    if strict and not text:
        raise InvalidInput("昵称不能为空")
    if len(text) > MAX_NICKNAME:
        if strict:
            raise InvalidInput(f"昵称最多 {MAX_NICKNAME} 个字")
        text = text[:MAX_NICKNAME]
    return text


def clean_avatar_url(value: object, images: ImageSources, strict: bool = True) -> str:
    """An avatar the pages may show: https on an allowed image host (WeChat's avatar CDN by
    default) or this server's /static/. Not strict: "" for any other."""
    if images.allows(value):
        return value
    if strict:
        raise InvalidInput(f"avatar_url 必须是允许的图片域名上的 https 地址（不超过 {MAX_IMAGE_URL} 个字符）")
    return ""


class Profiles:
    """Reading and changing a member's nickname and avatar."""

    def __init__(self, db: AsyncDatabase, decrypt: "UserDataDecrypter", images: ImageSources = ImageSources(),
                 moderation: Moderation | None = None) -> None:
        self.db = db
        self.decrypt = decrypt  # WeChat's encrypted user data -> its JSON (wechat/userdata.py)
        self.images = images  # where avatars may come from
        self.moderation = moderation or Moderation(db, None)  # a nickname's content check

    async def from_encrypted_user_info(self, member_id: str, iv: str, encrypted_data: str) -> dict:
        """The seed's getUserInfo: decrypt with the member's session key and store the profile.
        The anonymous "微信用户" never replaces a name the member chose."""
        member = await members.get(self.db, member_id)
        if member is None or not member.get("session_key"):
            raise LoginExpired("登录已过期，请重新登录")
        try:
            info = self.decrypt(member["session_key"], iv, encrypted_data)
        except InvalidInput as exc:
            log.warning("getUserInfo for %s refused: %s", member_id, exc.code)
            raise
        nickname = clean_nickname(info.get("nickName"), strict=False)
        avatar_url = clean_avatar_url(info.get("avatarUrl"), self.images, strict=False)
        if (nickname in ("", ANONYMOUS_NICKNAME)) and member.get("nickname"):
            return self._view(member)  # keep what the member filled in
        return await self._save(member_id, {"nickname": nickname or ANONYMOUS_NICKNAME,
                                            "avatar_url": avatar_url})

    async def update(self, member_id: str, nickname: object = None, avatar_url: object = None) -> dict:
        """The v1 fill-in: `nickname` and/or `avatar_url`, validated; the nickname through the
        content check (others see it only once it passes)."""
        fields: dict = {}
        verdict = "pass"
        if avatar_url is not None:
            fields["avatar_url"] = clean_avatar_url(avatar_url, self.images)
        if nickname is not None:
            text = clean_nickname(nickname)
            member = await members.get(self.db, member_id)
            if member is None:
                raise LoginExpired()
            verdict = await self.moderation.screen("nickname", member.get("openid", ""), text)
            fields.update({"nickname": text} if self.moderation.shown(verdict)
                          else {"nickname_pending": text, "nickname_check": verdict})
        if not fields:
            raise MissingParams("缺少参数 nickname 或 avatar_url")
        unset = ("nickname_pending", "nickname_check") if "nickname" in fields else ()
        view = await self._save(member_id, fields, unset)
        if nickname is not None:
            await self.moderation.hold("nickname", member_id, member.get("openid", ""), text, verdict)
        return view

    async def settle_nickname(self, member_id: str, text: str, verdict: str) -> None:
        """A hidden nickname's re-check (lottery/moderation.py): shown now, or kept hidden."""
        if not self.moderation.shown(verdict):
            await members.mark_nickname(self.db, member_id, text, verdict)
            return
        if await members.show_nickname(self.db, member_id, text):
            member = await members.get(self.db, member_id) or {}
            await gifts.update_sender(self.db, member_id, text, member.get("avatar_url") or "", clock.utcnow())

    async def _save(self, member_id: str, fields: dict, unset: tuple[str, ...] = ()) -> dict:
        member = await members.update_profile(self.db, member_id, {**fields, "updated_at": clock.utcnow()}, unset)
        if member is None:
            raise LoginExpired()
        # Gifts show the nickname others may see (a hidden one stays aside until it passes).
        shown = member.get("nickname") or ANONYMOUS_NICKNAME
        copied = await gifts.update_sender(self.db, member_id, shown, member.get("avatar_url") or "", clock.utcnow())
        log.info("profile of %s updated (%d gifts show it)", member_id, copied)
        return self._view(member)

    @staticmethod
    def _view(member: dict) -> dict:
        """The member's own view: what they wrote, even while others do not see it yet."""
        return {"nickname": member.get("nickname_pending") or member.get("nickname") or ANONYMOUS_NICKNAME,
                "avatar_url": member.get("avatar_url") or ""}
