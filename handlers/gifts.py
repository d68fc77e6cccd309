"""The v1 gift API: bearer login key, real status codes."""
from lottery import validate
from lottery.gifts import public_view

from handlers.base import BaseHandler


class GiftHandler(BaseHandler):
    async def get(self, order_id: str) -> None:
        """`{"gift": public view, "me": {state, item?}}`."""
        validate.check_identifier(order_id)
        member_id = await self.current_member()
        gift, me = await self.gifts.look(order_id, member_id)
        self.reply({"gift": public_view(gift), "me": me})


class JoinHandler(BaseHandler):
    async def post(self, order_id: str) -> None:
        """Join with the same rules as JoinGift. Body (optional): `{form_id, subscribed}`."""
        validate.check_identifier(order_id)
        member_id = await self.current_member()
        body = self.json_body()
        form_id = validate.text(body, "form_id", 128, required=False)
        subscribed = validate.text_list(body, "subscribed", 10, 128)
        result = await self.gifts.join(order_id, member_id, form_id, subscribed)
        me = {"state": result.state}
        if result.item is not None:
            me["item"] = result.item
        self.reply({"me": me, "gift": {"order_id": order_id, "version": result.gift["version"],
                                       "joined_count": result.gift["joined_count"],
                                       "status": result.gift["status"]}})


default_handlers = [
    (r"/api/v1/gifts/([^/]+)", GiftHandler),
    (r"/api/v1/gifts/([^/]+)/join", JoinHandler),
]
