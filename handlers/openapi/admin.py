"""The operator's routes (handlers/admin.py), present only when ADMIN_TOKEN is set (404
otherwise) and answering to it alone: gifts, support's view of notifications, the catalogue,
backups, the reconciliation with WeChat Pay's bills."""
from handlers.openapi.blocks import (BOOLEAN, COUNT, FEN, HEX64, IDENTIFIER, PRODUCT_ID, STRING, TEXT_LIST, TIME,
                                     answer, array, integer, nullable, obj, or_blank, query, ref, request, text,
                                     v1)
from handlers.openapi.gifts import ENTRY_FIELDS, TIER_FIELDS
from lottery.catalogue import MAX_IMAGES, MAX_PRICE, MAX_STOCK
from lottery.gifts import MAX_DEADLINE_HOURS, MAX_ITEMS, MAX_SEATS, METHODS
from lottery.reconciliation import KINDS
from lottery.storage.notifications import STATUSES as NOTIFICATION_STATUSES

PRODUCT_FIELDS = {
    "name": text(1, 50), "price": {**integer(1, MAX_PRICE), "description": "fen"}, "stock": integer(0, MAX_STOCK),
    "category_id": IDENTIFIER, "images": array({"type": "string", "minLength": 1, "maxLength": 500},
                                               maxItems=MAX_IMAGES),
    "description": {"type": "string", "maxLength": 2000}, "on_sale": BOOLEAN,
}

DAY = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$", "description": "a day, Asia/Shanghai"}
FEN_OR_NULL = nullable(FEN)
RECONCILIATION = obj({
    "date": DAY, "status": {"enum": ["running", "waiting", "done"]},
    "summary": nullable(obj({
        "bill": {"enum": ["ready", "none"]}, "payments_there": COUNT, "payments_here": COUNT, "amount_there": FEN,
        "amount_here": FEN, "refunds_there": COUNT, "refunds_here": COUNT, "refunded_there": FEN,
        "refunded_here": FEN, "mismatches": obj({kind: COUNT for kind in KINDS}),
        "settled_by_reconciliation": COUNT, "orders_checked": COUNT, "invariant_violations": COUNT})),
    "mismatches": array(obj({"kind": {"enum": list(KINDS)}, "out_trade_no": STRING, "amount_there": FEN_OR_NULL,
                             "amount_here": FEN_OR_NULL, "resolution": STRING, "out_refund_no": STRING,
                             "status_here": nullable(STRING)},
                            ("resolution", "out_refund_no", "status_here"))),
    "violations": array(obj({"out_trade_no": STRING, "problems": array(STRING)})),
    "attempts": COUNT, "last_error": nullable(STRING), "started_at": nullable(TIME), "finished_at": nullable(TIME)})

PATHS = {
    "/api/admin/gifts": {"post": v1(
        "Create a paid gift", obj({"order_id": IDENTIFIER, "seed_commitment": HEX64}), status=201, auth="adminToken",
        body=request({
            "sender_openid": text(1, 128),
            "method": {"enum": list(METHODS)},
            "items": array(request({"name": text(1, 50), "image": {"type": "string", "maxLength": 500},
                                    **TIER_FIELDS}, ("name",)), minItems=1, maxItems=MAX_ITEMS),
            "open_number": integer(1, MAX_SEATS),
            "open_at": TIME,
            "wish": {"type": "string", "maxLength": 100},
            "deadline_hours": integer(1, MAX_DEADLINE_HOURS),
            "sender_subscribed": TEXT_LIST, **ENTRY_FIELDS}, ("sender_openid", "method", "items")))},
    "/api/admin/notifications": {"get": v1(
        "Support's view of a gift's notifications",
        obj({"order_id": IDENTIFIER, "counts": {"type": "object", "additionalProperties": COUNT},
             "opened_record": nullable(obj({"status": nullable(STRING), "created_at": nullable(TIME),
                                            "done_at": nullable(TIME),
                                            "pages": {"type": "object", "additionalProperties": COUNT}})),
             "entries": array(obj({
                 "id": STRING, "member_id": STRING, "kind": STRING, "status": {"enum": list(NOTIFICATION_STATUSES)},
                 "template_id": STRING, "attempts": COUNT, "next_attempt_at": nullable(TIME),
                 "last_error": nullable(STRING), "sent_at": nullable(TIME), "created_at": nullable(TIME),
                 "updated_at": nullable(TIME)}))}),
        auth="adminToken",
        params=[query("order_id", IDENTIFIER, required=True),
                query("status", or_blank({"enum": list(NOTIFICATION_STATUSES)})),
                query("limit", integer(1, 1000))])},
    "/api/admin/categories": {"post": v1(
        "Add a category", obj({"category_id": IDENTIFIER}), status=201, auth="adminToken", body_required=True,
        body=request({"name": text(1, 50), "sort": integer(-10000, 10000)}, ("name",)))},
    "/api/admin/products": {"post": v1(
        "Add a product (on sale unless told)", obj({"product_id": IDENTIFIER}), status=201, auth="adminToken",
        body=request(PRODUCT_FIELDS, ("name", "price", "stock")),
        body_required=True)},
    "/api/admin/products/{product_id}": {"patch": v1(
        "Change a product (at least one field); orders already made keep the prices they were charged",
        ref("Product"), auth="adminToken", params=[PRODUCT_ID], body_required=True,
        body={**request(PRODUCT_FIELDS), "minProperties": 1})},
    "/api/admin/reconciliation": {
        "get": v1("A day's reconciliation with WeChat Pay's bill: summary, mismatches, money-invariant violations "
                  "(404: the day was never reconciled)", RECONCILIATION, auth="adminToken",
                  params=[query("date", DAY, required=True)]),
        "post": v1("Reconcile a day again now, replacing its report (409 while a run holds the day, or while "
                   "WeChat Pay's bill is not ready; 502 when WeChat Pay cannot be reached)", RECONCILIATION,
                   auth="adminToken", body=request({"date": DAY}, ("date",)), body_required=True,
                   more={502: answer("upstream_error: WeChat Pay's bill could not be fetched", ref("Error"))})},
    "/api/admin/backup": {"post": v1(
        "Archive the embedded engine's data now, into --backup_dir on the server's host",
        obj({"path": STRING, "size_bytes": COUNT, "taken_at": TIME}), status=201, auth="adminToken",
        more={501: answer("backup_unsupported: MongoDB (use its own tools), or an engine that keeps nothing "
                          "on disk", ref("Error"))})},
}
