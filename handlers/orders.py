"""Orders: buying a gift (v1, and the seed's creatOrder), asking again to pay, and reading an
order (v1, and the seed's returnOrderData, which the pay-result page calls)."""
from handlers import params
from handlers.base import ID_GROUP, BaseHandler, LegacyHandler
from lottery.orders import MAX_LINES, OrderLine, OrderSpec, order_view


def order_spec(body: dict, request_key: str | None) -> OrderSpec:
    """An order from a request body: lines and how the gift opens. Prices and totals a client
    sends are never read: the server prices the order."""
    lines = [OrderLine(params.identifier(entry, "product_id"), params.integer(entry, "quantity", 1, 10**6),
                       **params.tier(entry)) for entry in params.objects(body, "items", MAX_LINES)]
    return OrderSpec(lines=lines, request_key=request_key, **params.opening(body))


def created(order: dict, pay: dict) -> dict:
    return {"order_id": order["_id"], "amount_total": order["order"]["amount_total"],
            "status": order["order"]["status"], "expires_at": order_view(order)["expires_at"], "pay": pay}


class OrdersHandler(BaseHandler):
    async def post(self) -> None:
        """`{items: [{product_id, quantity}], method, open_number?, open_at?, wish?,
        deadline_hours?, sender_subscribed?}`, optional header `Idempotency-Key` -> 201
        `{order_id, amount_total, status, expires_at, pay}` (pay: `wx.requestPayment`'s
        parameters); the same request again -> 200 with the same order."""
        member_id = self.member_id()
        key = self.request.headers.get("Idempotency-Key")
        key = params.text({"key": key}, "key", 128, required=False) or None
        order, pay, new = await self.orders.create(member_id, order_spec(self.json_body(), key))
        self.reply(created(order, pay), status=201 if new else 200)

    async def get(self) -> None:
        """`?cursor=` -> `{orders, next_cursor}`: my orders, newest first."""
        cursor = params.text({"cursor": self.query_value("cursor", "")}, "cursor", 40, required=False)
        self.reply(await self.orders.of_buyer(self.member_id(), cursor))


class OrderHandler(BaseHandler):
    async def get(self, order_id: str) -> None:
        """The order (its buyer only): status, lines, amounts, and the gift once paid."""
        self.reply(order_view(await self.orders.order_of(order_id, self.member_id())))


class OrderPayHandler(BaseHandler):
    async def post(self, order_id: str) -> None:
        """Pay an unpaid order again -> `{pay}` (400 once paid or closed)."""
        order = await self.orders.order_of(order_id, self.member_id())
        self.reply({"pay": await self.orders.pay_params(order)})


class CreateOrderHandler(LegacyHandler):
    async def post(self) -> None:
        """The seed's creatOrder: the v1 fields and `login_key` -> "success" with
        `{order_id, amount_total, status, expires_at, pay}`."""
        body = self.json_body()
        params.text(body, "login_key", 128)
        order, pay, _ = await self.orders.create(self.member_id(), order_spec(body, None))
        self.reply(created(order, pay), message="下单成功")


class ReturnOrderDataHandler(LegacyHandler):
    async def post(self) -> None:
        """What the pay-result page asks after `wx.requestPayment`: `{login_key, order_id}` ->
        "success" with the order (its payment looked up at WeChat Pay if no notify came yet)."""
        body = self.json_body()
        params.text(body, "login_key", 128)
        order_id = params.identifier(body, "order_id")
        view = order_view(await self.orders.order_of(order_id, self.member_id()))
        self.reply({**view, "paid": view["gift"] is not None}, message="查询成功")


default_handlers = [
    (r"/api/v1/orders", OrdersHandler),
    (rf"/api/v1/orders/{ID_GROUP}", OrderHandler),
    (rf"/api/v1/orders/{ID_GROUP}/pay", OrderPayHandler),
    (r"/api/order/creatOrder", CreateOrderHandler),
    (r"/api/payment/returnOrderData", ReturnOrderDataHandler),
]
