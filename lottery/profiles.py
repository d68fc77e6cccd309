"""Members' display names and avatars: from the seed's encrypted getUserInfo, or from the
nickname and avatar fill-in components (WeChat's getUserInfo answers "微信用户" and a grey
avatar since November 2022). A change is copied onto the member's gifts (`sender`), which is
what the join page shows."""
import base64
import binascii
import json
import logging
import unicodedata

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock
from lottery.errors import InvalidInput, LoginExpired, MissingParams
from lottery.images import MAX_IMAGE_URL, ImageSources
from lottery.storage import gifts, members

log = logging.getLogger(__name__)

MAX_NICKNAME = 32
# What WeChat's getUserInfo returns for everyone since November 2022.
ANONYMOUS_NICKNAME = "微信用户"


class DecryptionFailed(InvalidInput):
    code = "decryption_failed"
    message = "用户数据解密失败，请重新授权"


class WrongAppid(InvalidInput):
    code = "wrong_appid"
    message = "用户数据不属于本小程序"


def _b64(value: str, name: str, length: int | None = None) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecryptionFailed(f"参数 {name} 不是合法的 base64") from exc
    if length is not None and len(raw) != length:
        raise DecryptionFailed(f"参数 {name} 长度错误")
    return raw


def decrypt_user_data(session_key: str, iv: str, encrypted_data: str, appid: str) -> dict:
    """WeChat's encrypted user data: AES-128-CBC with the session key, PKCS#7 padding, JSON
    with a `watermark.appid` that must be ours. DecryptionFailed or WrongAppid otherwise."""
    key = _b64(session_key, "session_key", 16)
    vector = _b64(iv, "iv", 16)
    data = _b64(encrypted_data, "encryptedData")
    if not data or len(data) % 16:
        raise DecryptionFailed("参数 encryptedData 长度错误")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(vector)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
        decoded = json.loads(plain.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        # Wrong key, tampered data or iv: the padding or the JSON does not survive.
        raise DecryptionFailed() from exc
    if not isinstance(decoded, dict) or not isinstance(decoded.get("watermark"), dict):
        raise DecryptionFailed()
    if not appid or decoded["watermark"].get("appid") != appid:
        raise WrongAppid()
    return decoded


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

    def __init__(self, db: AsyncDatabase, appid: str, images: ImageSources = ImageSources()) -> None:
        self.db = db
        self.appid = appid
        self.images = images  # where avatars may come from

    async def from_encrypted_user_info(self, member_id: str, iv: str, encrypted_data: str) -> dict:
        """The seed's getUserInfo: decrypt with the member's session key and store the profile.
        The anonymous "微信用户" never replaces a name the member chose."""
        member = await members.get(self.db, member_id)
        if member is None or not member.get("session_key"):
            raise LoginExpired("登录已过期，请重新登录")
        try:
            info = decrypt_user_data(member["session_key"], iv, encrypted_data, self.appid)
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
        """The v1 fill-in: `nickname` and/or `avatar_url`, validated."""
        fields = {}
        if nickname is not None:
            fields["nickname"] = clean_nickname(nickname)
        if avatar_url is not None:
            fields["avatar_url"] = clean_avatar_url(avatar_url, self.images)
        if not fields:
            raise MissingParams("缺少参数 nickname 或 avatar_url")
        return await self._save(member_id, fields)

    async def _save(self, member_id: str, fields: dict) -> dict:
        member = await members.update_profile(self.db, member_id, {**fields, "updated_at": clock.utcnow()})
        if member is None:
            raise LoginExpired()
        view = self._view(member)
        copied = await gifts.update_sender(self.db, member_id, view["nickname"], view["avatar_url"], clock.utcnow())
        log.info("profile of %s updated (%d gifts show it)", member_id, copied)
        return view

    @staticmethod
    def _view(member: dict) -> dict:
        return {"nickname": member.get("nickname") or ANONYMOUS_NICKNAME,
                "avatar_url": member.get("avatar_url") or ""}
