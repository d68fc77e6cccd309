"""Claims (handlers/claims.py): the winner's claim with their address, the sender's view of a
gift's claims and refunds, my prizes; the operator's shipping list and refunds."""
from handlers.openapi.blocks import (COUNT, FEN, IDENTIFIER, NULL, ORDER_ID, STRING, TEXT_LIST, TIME, JSON,
                                     array, nullable, obj, or_blank, path_id, query, ref, request, text, trimmed,
                                     v1)
from lottery.claims import LIMITS, STATUSES
from lottery.orders import ORDER_STATUSES
from lottery.storage.refunds import STATUSES as REFUND_STATUSES

CLAIM_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}:[0-9]{1,4}$",
            "description": "`{order_id}:{item_index}`"}
ADDRESS = {name: STRING for name in LIMITS}
# What a claim holds, whoever reads it: the won item, its status and when each step happened.
CLAIM = {
    "claim_id": CLAIM_ID, "order_id": IDENTIFIER, "item_index": COUNT, "item": ref("Item"),
    "status": {"enum": list(STATUSES)}, "won_at": TIME, "deadline_at": TIME, "claimed_at": nullable(TIME),
    "shipped_at": nullable(TIME), "delivered_at": nullable(TIME), "carrier": nullable(STRING),
    "tracking_no": nullable(STRING),
}
REFUND_STATUS = {"enum": list(REFUND_STATUSES)}

SCHEMAS: dict[str, dict] = {
    "Address": obj(ADDRESS),
    # The region, the name's first character, the phone's last four digits.
    "MaskedAddress": obj({name: STRING for name in LIMITS if name != "postalCode"}),
    "Claim": obj({**CLAIM, "address": ref("Address")}, optional=("address",)),
    "Refund": obj({"refund_no": STRING, "order_id": IDENTIFIER, "amount": FEN, "items": array(COUNT),
                   "status": REFUND_STATUS, "reason": STRING, "attempts": COUNT, "last_error": nullable(STRING),
                   "created_at": TIME, "updated_at": nullable(TIME)}),
}

ADDRESS_BODY = request({
    **{name: trimmed(limit) for name, limit in LIMITS.items()},
    "telNumber": {"type": "string", "pattern": r"^(1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8}(-[0-9]{1,6})?)$",
                  "description": "a mainland mobile number, or a landline"},
    "postalCode": {"type": "string", "pattern": "^[0-9]{6}$"},
    "subscribed": {**TEXT_LIST, "description": "template ids accepted for the shipping message"}},
    tuple(name for name in LIMITS if name != "postalCode"))

SENDER_VIEW = obj({
    "order_id": IDENTIFIER,
    "claims": array(obj({**CLAIM, "tracking_no": NULL, "winner": {**STRING, "description": "masked"}})),
    "refunds": array(obj({"refund_no": STRING, "amount": FEN, "items": array(COUNT), "status": REFUND_STATUS,
                          "reason": STRING})),
    "order": nullable(obj({"status": {"enum": list(ORDER_STATUSES)}, "amount_total": FEN, "amount_refunded": FEN,
                           "amount_refunding": FEN, "amount_to_refund": FEN})),
})
SHIPPING_LIST = obj({
    "claims": array(obj({**CLAIM, "address": {"anyOf": [ref("Address"), ref("MaskedAddress")]}},
                        optional=("address",)), maxItems=50),
    "next_cursor": nullable(CLAIM_ID)})
CLAIM_PATH = [path_id("claim_id", CLAIM_ID, "0123456789abcdef01234567:0")]

PATHS = {
    "/api/v1/gifts/{order_id}/claim": {
        "get": v1("My claim of what I won in this gift, with my address once given (the winner only)",
                  ref("Claim"), params=[ORDER_ID]),
        "post": v1("Claim what I won with a postal address (wx.chooseAddress's fields), or change it until it "
                   "ships", ref("Claim"), params=[ORDER_ID], body=ADDRESS_BODY, body_required=True),
    },
    "/api/v1/gifts/{order_id}/claims": {"get": v1(
        "The sender's view: each won item's claim (winner masked, no address, no tracking number) and the "
        "order's refunds", SENDER_VIEW, params=[ORDER_ID])},
    "/api/v1/me/prizes": {"get": v1("What I won (the newest 200) and where each stands",
                                    obj({"prizes": array(ref("Claim"), maxItems=200)}))},
    "/api/admin/claims": {"get": v1(
        "The operator's list of claims in a state, 50 a page: the shipping list (claimed) with addresses in full, "
        "the others masked", SHIPPING_LIST, auth="adminToken",
        params=[query("status", {"enum": list(STATUSES), "default": "claimed"}),
                query("cursor", or_blank({**CLAIM_ID, "description": "next_cursor of the page before"})),
                query("format", {"enum": ["json", "csv"], "default": "json"})],
        more={200: {"description": "the list, as JSON or (format=csv) a CSV file with one address per row (a cell that "
                                   "would start a spreadsheet formula starts with ' instead)",
                    "headers": {"X-Next-Cursor": {"description": "the next page's cursor (CSV only)",
                                                  "schema": CLAIM_ID}},
                    "content": {JSON: {"schema": SHIPPING_LIST}, "text/csv": {"schema": STRING}}}})},
    "/api/admin/claims/{claim_id}/ship": {"post": v1(
        "Shipped: claimed -> shipped; the winner is told", ref("Claim"), auth="adminToken", params=CLAIM_PATH,
        body=request({"carrier": text(1, 32), "tracking_no": text(1, 64)}, ("carrier", "tracking_no")),
        body_required=True)},
    "/api/admin/claims/{claim_id}/delivered": {"post": v1(
        "Delivered: shipped -> delivered", ref("Claim"), auth="adminToken", params=CLAIM_PATH)},
    "/api/admin/refunds": {"get": v1(
        "Refunds in a state, 50 a page (failed and abnormal ones need the operator)",
        obj({"refunds": array(ref("Refund"), maxItems=50), "next_cursor": nullable(STRING)}), auth="adminToken",
        params=[query("status", {**REFUND_STATUS, "default": "failed"}),
                query("cursor", {"type": "string", "maxLength": 80,
                                 "description": "next_cursor of the page before"})])},
}
