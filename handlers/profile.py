"""Profile data: the seed's encrypted getUserInfo, and the v1 nickname/avatar fill-in."""
from handlers import params
from handlers.base import BaseHandler, LegacyHandler


class GetUserInfoHandler(LegacyHandler):
    async def post(self) -> None:
        """`{iv, encryptedData, login_key}` from wx.getUserInfo -> "success" with `{name, avatar}`."""
        body = self.json_body()
        params.text(body, "login_key", 128)
        iv = params.text(body, "iv", 64)
        encrypted = params.text(body, "encryptedData", 8192)
        profile = await self.profiles.from_encrypted_user_info(self.member_id(), iv, encrypted)
        self.reply({"name": profile["nickname"], "avatar": profile["avatar_url"]}, message="获取成功")


class MyProfileHandler(BaseHandler):
    async def post(self) -> None:
        """`{nickname?, avatar_url?}` from the nickname and avatar fill-in components -> the profile."""
        member_id = self.member_id()
        body = self.json_body()
        # The domain cleans and checks both (what a nickname may hold is its rule).
        profile = await self.profiles.update(member_id, body.get("nickname"), body.get("avatar_url"))
        self.reply({"nickname": profile["nickname"], "avatar_url": profile["avatar_url"]})


default_handlers = [
    (r"/api/member/code/getUserInfo", GetUserInfoHandler),
    (r"/api/v1/me/profile", MyProfileHandler),
]
