"""The v1 gift API: bearer login key, real status codes."""
from handlers import params
from handlers.base import ID_GROUP, BaseHandler
from lottery.gifts import public_view


class GiftHandler(BaseHandler):
    loads_gift = True

    async def get(self, order_id: str) -> None:
        """`{"gift": public view, "me": {state, item?}}`."""
        _, gift, me = self.my_gift()
        self.reply({"gift": public_view(gift), "me": me})


class JoinHandler(BaseHandler):
    loads_gift = True

    async def post(self, order_id: str) -> None:
        """Join with the same rules as JoinGift. Body (optional): `{form_id, subscribed}`."""
        member_id, gift, _ = self.my_gift()
        body = self.json_body()
        form_id = params.text(body, "form_id", 128, required=False)
        subscribed = params.text_list(body, "subscribed", 10, 128)
        result = await self.gifts.join(order_id, member_id, form_id, subscribed, gift)
        me = {"state": result.state}
        if result.item is not None:
            me["item"] = result.item
        if result.receipt is not None:
            me["receipt"] = result.receipt
        self.reply({"me": me, "gift": {"order_id": order_id, "version": result.gift["version"],
                                       "joined_count": result.gift["joined_count"],
                                       "status": result.gift["status"]}})


default_handlers = [
    (rf"/api/v1/gifts/{ID_GROUP}", GiftHandler),
    (rf"/api/v1/gifts/{ID_GROUP}/join", JoinHandler),
]
