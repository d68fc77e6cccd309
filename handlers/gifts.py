"""The v1 gift API: bearer login key, real status codes."""
from handlers import params
from handlers.base import ID_GROUP, BaseHandler
from lottery.entry import public_conditions
from lottery.gifts import public_view


class GiftHandler(BaseHandler):
    loads_gift = True

    async def get(self, order_id: str) -> None:
        """`{"gift": public view, "me": {state, item?}}`."""
        _, gift, me = self.my_gift()
        self.reply({"gift": public_view(gift), "me": me})


class JoinHandler(BaseHandler):
    loads_gift = True
    loads_join = False

    async def post(self, order_id: str) -> None:
        """Join with the same rules as JoinGift. Body (optional): `{form_id, subscribed,
        pass_phrase, iv, encryptedData}` (the last three for a gift's entry conditions)."""
        member_id, gift, _ = self.my_gift()
        body = self.json_body()
        form_id = params.text(body, "form_id", 128, required=False)
        subscribed = params.text_list(body, "subscribed", 10, 128)
        result = await self.gifts.join(order_id, member_id, form_id, subscribed, gift, params.entry_proof(body),
                                       self.request.remote_ip or "")
        me = {"state": result.state}
        if result.item is not None:
            me["item"] = result.item
        if result.receipt is not None:
            me["receipt"] = result.receipt
        self.reply({"me": me, "gift": {"order_id": order_id, "version": result.gift["version"],
                                       "joined_count": result.gift["joined_count"],
                                       "status": result.gift["status"]}})


class GroupHandler(BaseHandler):
    async def post(self, order_id: str) -> None:
        """The sender binds a group-only gift to the group they shared it in: `{iv,
        encryptedData}` from wx.getGroupEnterInfo -> `{entry}`."""
        member_id = self.member_id()
        body = self.json_body()
        params.text(body, "iv", 64)
        params.text(body, "encryptedData", 8192)
        await self.gifts.entry.bind_group(order_id, member_id, params.entry_proof(body))
        self.reply({"entry": public_conditions(await self.gifts.get(order_id))})


default_handlers = [
    (rf"/api/v1/gifts/{ID_GROUP}", GiftHandler),
    (rf"/api/v1/gifts/{ID_GROUP}/join", JoinHandler),
    (rf"/api/v1/gifts/{ID_GROUP}/group", GroupHandler),
]
