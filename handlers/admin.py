"""Operations API, present only when ADMIN_TOKEN is set."""
from handlers.base import BaseHandler


class AdminGiftsHandler(BaseHandler):
    async def post(self) -> None:
        """Create a paid gift: `{sender_openid, method, items, open_number?, open_at?, wish?,
        deadline_hours?}` -> 201 `{"order_id"}`."""
        self.require_admin()
        gift = await self.gifts.create(self.json_body())
        self.reply({"order_id": gift["_id"], "seed_commitment": gift["seed_commitment"]},
                   status=201)


default_handlers = [
    (r"/api/admin/gifts", AdminGiftsHandler),
]
