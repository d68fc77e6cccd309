"""Orders (handlers/orders.py): buying a gift, paying it, reading it; the v1 routes and the
seed's creatOrder and returnOrderData."""
from handlers.openapi.blocks import (BOOLEAN, FEN, IDENTIFIER, ORDER_ID, STRING, TEXT_LIST, TIME, answer, array,
                                     integer, legacy, nullable, obj, or_blank, query, ref, request, v1)
from handlers.openapi.gifts import ENTRY_FIELDS, GIFT_STATUS, TIER_FIELDS
from lottery.gifts import MAX_DEADLINE_HOURS, MAX_ITEMS, MAX_SEATS, METHODS
from lottery.orders import MAX_LINES, ORDER_STATUSES

ORDER = {
    "order_id": IDENTIFIER, "status": {"enum": list(ORDER_STATUSES)}, "method": {"enum": list(METHODS)},
    "open_number": nullable(integer(1, MAX_SEATS)), "open_at": nullable(TIME), "deadline_at": nullable(TIME),
    "lines": array(obj({"product_id": IDENTIFIER, "name": STRING, "price": FEN, "quantity": integer(1, MAX_ITEMS),
                        "image": STRING}), minItems=1, maxItems=MAX_LINES),
    "amount_total": FEN, "amount_refunded": FEN, "amount_refunding": FEN, "wish": STRING,
    "created_at": TIME, "expires_at": nullable(TIME), "paid_at": nullable(TIME), "closed_at": nullable(TIME),
    "gift": nullable(obj({"order_id": IDENTIFIER, "url": STRING, "status": GIFT_STATUS})),
    # Present when a payment landed on the order after it was closed: all of it goes back.
    "paid_after_close": obj({"amount": FEN, "refund": {"const": "pending"}}),
}

SCHEMAS: dict[str, dict] = {
    "Pay": obj({"appId": STRING, "timeStamp": {"type": "string", "pattern": "^[0-9]+$"}, "nonceStr": STRING,
                "package": {"type": "string", "pattern": "^prepay_id=."}, "signType": {"const": "RSA"},
                "paySign": STRING}),
    "OrderCreated": obj({"order_id": IDENTIFIER, "amount_total": FEN, "status": {"const": "unpaid"},
                         "expires_at": TIME, "pay": ref("Pay")}),
    "Order": obj(ORDER, optional=("paid_after_close",)),
    "LegacyOrder": obj({**ORDER, "paid": BOOLEAN}, optional=("paid_after_close",)),
}

ORDER_FIELDS = {
    "items": array(request({"product_id": IDENTIFIER, "quantity": integer(1, MAX_ITEMS), **TIER_FIELDS},
                           ("product_id", "quantity")), minItems=1, maxItems=MAX_LINES),
    "method": {"enum": list(METHODS)},
    "open_number": integer(1, MAX_SEATS),
    "open_at": {**TIME, "description": "a timed gift's opening, at least 20 minutes ahead"},
    "wish": {"type": "string", "maxLength": 100},
    "deadline_hours": integer(1, MAX_DEADLINE_HOURS),
    "sender_subscribed": TEXT_LIST,
    **ENTRY_FIELDS,
}
ORDER_BODY = request(ORDER_FIELDS, ("items", "method"))
IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": False,
                   "schema": {"type": "string", "maxLength": 128},
                   "description": "the same key (or the same request) while the order is unpaid: the same order; "
                                  "the same key with a different body: 409 idempotency_key_reused; empty: none"}
CONFLICT = {409: answer("refused: out of stock (out_of_stock), the same request still being made (order_in_progress), "
                        "the Idempotency-Key already used with a different body (idempotency_key_reused), or too "
                        "many unpaid orders or units held by this member (too_many_unpaid_orders: pay or wait for "
                        "them to expire)", ref("Error"))}
UPSTREAM = {502: answer("WeChat Pay refused or did not answer, or WeChat's content check is down and "
                        "--content_unreachable=refuse (upstream_error)", ref("Error")),
            503: answer("payments are not configured (payments_not_configured), or the database is unreachable "
                        "(database_unavailable)", ref("Error"))}

PATHS = {
    "/api/v1/orders": {
        "post": v1("Buy a gift: the order, priced by the server, and wx.requestPayment's parameters",
                   ref("OrderCreated"), status=201, body=ORDER_BODY, body_required=True, params=[IDEMPOTENCY_KEY],
                   more={200: answer("the same request again: the same order", ref("OrderCreated")), **CONFLICT,
                         400: answer("bad input (invalid_input, missing_params), or content_risky: WeChat's content "
                                     "check found the wish or the pass phrase risky (nothing is held); a wish for "
                                     "review, or written while WeChat's check was down, is accepted and others see "
                                     "the default wish until it passes", ref("Error")),
                         **UPSTREAM}),
        "get": v1("My orders, newest first, 20 a page",
                  obj({"orders": array(ref("Order"), maxItems=20), "next_cursor": nullable(TIME)}),
                  params=[query("cursor", or_blank({**TIME, "maxLength": 40,
                                                    "description": "next_cursor of the page before"}))]),
    },
    "/api/v1/orders/{order_id}": {"get": v1(
        "My order (its buyer only); while unpaid, its payment is looked up at WeChat Pay", ref("Order"),
        params=[ORDER_ID])},
    "/api/v1/orders/{order_id}/pay": {"post": v1(
        "wx.requestPayment's parameters again, for my unpaid order", obj({"pay": ref("Pay")}), params=[ORDER_ID],
        more=UPSTREAM)},
    "/api/order/creatOrder": {"post": legacy(
        "The seed's order (success: the order and wx.requestPayment's parameters)",
        request({"login_key": STRING, **ORDER_FIELDS}, ("login_key", "items", "method")),
        ref("OrderCreated"))},
    "/api/payment/returnOrderData": {"post": legacy(
        "The order after wx.requestPayment (asks WeChat Pay while no notify came) and whether it is paid",
        request({"login_key": STRING, "order_id": IDENTIFIER}, ("login_key", "order_id")),
        ref("LegacyOrder"))},
}
