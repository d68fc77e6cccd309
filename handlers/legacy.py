"""The seed mini-program's routes, unchanged on the wire (names misspelt as the client has them).

Every answer is HTTP 200 with `{"code", "message", "data"}`; the client reads `code`:
"success" / "suc" / "error"."""
from handlers import params
from handlers.base import LegacyHandler
from lottery import clock
from lottery.entry import public_conditions
from lottery.gifts import METHOD_NAMES


def legacy_gift_data(gift: dict) -> dict:
    """`member_data`, `methons_data`, `order_data` as join.js reads them."""
    return {
        "member_data": {"name": gift["sender"]["name"], "avatar": gift["sender"]["avatar"]},
        "methons_data": {"get_method": METHOD_NAMES[gift["method"]],
                         "open_number": gift.get("open_number") or 0,
                         "opentime": clock.shanghai_text(gift.get("open_at"))},
        "order_data": {"order_id": gift["_id"], "memo": gift["wish"],
                       "items_total": gift["items_total"], "items_left": gift["items_left"],
                       "joined_count": gift["joined_count"], "status": gift["status"]},
    }


class LoginHandler(LegacyHandler):
    async def post(self) -> None:
        """`{code}` from wx.login -> `data.login_key`."""
        code = params.text(self.json_body(), "code", 128)
        login_key = await self.accounts.login(code)
        self.reply({"login_key": login_key}, message="登录成功")


# me.state -> (code, message) for checkHasJoin, in the seed's order of checks.
CHECK_ANSWERS = {
    "joined_waiting": ("error", "你已经参与过了"),
    "won": ("error", "你已经参与过了"),
    "lost": ("error", "你已经参与过了"),
    "full": ("error", "参与人数已满"),
    "closed": ("error", "参与时间已过"),
    "own_gift": ("error", "不能参与自己发起的礼物"),
}


class CheckHasJoinHandler(LegacyHandler):
    loads_gift = True

    async def post(self) -> None:
        """Whether the member may join: "suc" opened, "error" cannot, "success" may."""
        body = self.json_body()
        params.text(body, "login_key", 128)
        params.identifier(body, "order_id")
        _, gift, me = self.my_gift()
        if gift["status"] == "finished":
            self.reply(None, "suc", "已经开奖")
        elif me["state"] == "can_join":
            data = legacy_gift_data(gift)
            if gift.get("entry"):  # what to ask for before the tap (the seed's gifts have none)
                data["entry"] = public_conditions(gift)
            self.reply(data, "success", "可以参与")
        else:
            code, message = CHECK_ANSWERS[me["state"]]
            self.reply(None, code, message)


class JoinGiftHandler(LegacyHandler):
    loads_gift = True
    loads_join = False

    async def post(self) -> None:
        """Join: "success" joined and waiting, "suc" a direct gift's item is yours."""
        body = self.json_body()
        params.text(body, "login_key", 128)
        order_id = params.identifier(body, "order_id")
        # form_id fed the retired template messages; kept on the join, no longer required.
        form_id = params.text(body, "form_id", 128, required=False)
        subscribed = params.text_list(body, "subscribed", 10, 128)
        proof = params.entry_proof(body)  # pass_phrase, iv, encryptedData: for entry conditions
        member_id, gift, _ = self.my_gift()
        result = await self.gifts.join(order_id, member_id, form_id, subscribed, gift, proof,
                                       self.request.remote_ip or "")
        data = legacy_gift_data(result.gift)
        if result.item is not None:
            data["item"] = result.item
            self.reply(data, "suc", "直接开奖")
        else:
            self.reply(data, "success", "参与成功,等待抽奖")


default_handlers = [
    (r"/api/member/code/login", LoginHandler),
    (r"/api/sharagift/checkHasJoin", CheckHasJoinHandler),
    (r"/api/sharagift/JoinGift", JoinGiftHandler),
]
