"""Profile data: the seed's encrypted getUserInfo, and the v1 nickname/avatar fill-in."""
from lottery import validate
from lottery.profiles import Profiles

from handlers.base import BaseHandler
from handlers.legacy import LegacyHandler


class ProfileMixin:
    @property
    def profiles(self) -> Profiles:
        return self.settings["profiles"]


class GetUserInfoHandler(ProfileMixin, LegacyHandler):
    async def post(self) -> None:
        """`{iv, encryptedData, login_key}` from wx.getUserInfo -> "success" with `{name, avatar}`."""
        body = self.json_body()
        login_key = validate.text(body, "login_key", 128)
        iv = validate.text(body, "iv", 64)
        encrypted = validate.text(body, "encryptedData", 8192)
        member_id = await self.accounts.authenticate(login_key)
        profile = await self.profiles.from_encrypted_user_info(member_id, iv, encrypted)
        self.reply({"name": profile["nickname"], "avatar": profile["avatar_url"]}, message="获取成功")


class MyProfileHandler(ProfileMixin, BaseHandler):
    async def post(self) -> None:
        """`{nickname, avatar_url}` from the nickname and avatar fill-in components -> the profile."""
        member_id = await self.current_member()
        profile = await self.profiles.update(member_id, self.json_body())
        self.reply({"nickname": profile["nickname"], "avatar_url": profile["avatar_url"]})


default_handlers = [
    (r"/api/member/code/getUserInfo", GetUserInfoHandler),
    (r"/api/v1/me/profile", MyProfileHandler),
]
