"""The order side of a gift. A bought gift is its order: one document in `gifts` whose `order`
part carries the lines, the amount and the payment state, so that paying the order and opening
the gift to joiners are one atomic update (this module), and the gift side (gifts.py) never sees
an unpaid gift: an order is `reserving` (stock being held), then `unpaid`, then the gift's own
states once paid; `closed` if it expired unpaid.

Every transition is one conditional update on the state it leaves, so a duplicate notify, a
retried query or a second process changes nothing twice:

    reserving --stock held--> unpaid --paid (notify or query)--> open (the gift), order.status paid
                                     \\--expired, closed at WeChat Pay--> closed
    closed --a payment that landed anyway--> closed with `order.paid_after_close` (to refund)

While reserving, `due_at` is when the order was made; while unpaid, its expiry (the (status, due_at) index finds expired ones);
once paid it becomes the gift's own due time. `order.key` (unique among open orders) makes a
second tap with the same request the same order."""
from datetime import datetime

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from lottery.storage.gifts import PUBLIC, refund_items

# States of an order's gift document before the gift exists for members.
RESERVING, UNPAID, CLOSED = "reserving", "unpaid", "closed"


async def ensure_indexes(db: AsyncDatabase) -> None:
    await db.gifts.create_index([("order.key", ASCENDING)], unique=True,
                                partialFilterExpression={"order.key_open": True})
    # Orders with refundable items not yet in a refund (sparse: only orders that ever had one).
    await db.gifts.create_index([("order.refund_unbatched", ASCENDING)], sparse=True)
    # Orders by the time they were paid (reconciliation's day; sparse: paid orders only).
    await db.gifts.create_index([("order.paid_at", ASCENDING)], sparse=True)


async def insert(db: AsyncDatabase, gift: dict) -> dict | None:
    """Store a new order (status `reserving`); None if an open order has the same key (the
    caller answers with that one)."""
    try:
        await db.gifts.insert_one(gift)
    except DuplicateKeyError:
        return None
    return gift


# What each member holds unpaid: `unpaid_holds`, one document a member, `{_id: member id, orders,
# units, held: {order_id: units}}`. An order is counted by one conditional update whose filter
# carries the caps, and uncounted once by the steps that move it out of unpaid (paid, closed,
# dropped): keyed by the order, so a retry changes nothing twice.

async def hold_unpaid(db: AsyncDatabase, buyer_id: str, order_id: str, units: int, max_orders: int,
                      max_units: int) -> bool:
    """Count a new order among its buyer's unpaid ones if they stay within `max_orders` orders
    and `max_units` units; True also when it is counted already (a retry)."""
    try:
        await db.unpaid_holds.update_one({"_id": buyer_id}, {"$setOnInsert": {"orders": 0, "units": 0, "held": {}}},
                                         upsert=True)
    except DuplicateKeyError:  # another request made it at the same moment
        pass
    result = await db.unpaid_holds.update_one(
        {"_id": buyer_id, "orders": {"$lte": max_orders - 1}, "units": {"$lte": max_units - units},
         f"held.{order_id}": {"$exists": False}},
        {"$inc": {"orders": 1, "units": units}, "$set": {f"held.{order_id}": units}})
    if result.modified_count:
        return True
    return await db.unpaid_holds.count_documents({"_id": buyer_id, f"held.{order_id}": units}, limit=1) == 1


async def unpaid_held(db: AsyncDatabase, buyer_id: str) -> dict[str, int]:
    """The orders counted among the buyer's unpaid ones: order id -> units."""
    found = await db.unpaid_holds.find_one({"_id": buyer_id}, {"held": 1})
    return (found or {}).get("held") or {}


async def release_unpaid(db: AsyncDatabase, buyer_id: str, order_id: str, units: int) -> bool:
    """The order is no longer unpaid (paid, closed, dropped): uncount it, once."""
    result = await db.unpaid_holds.update_one(
        {"_id": buyer_id, f"held.{order_id}": units},
        {"$inc": {"orders": -1, "units": -units}, "$unset": {f"held.{order_id}": ""}})
    return result.modified_count == 1


async def by_key(db: AsyncDatabase, key: str) -> dict | None:
    """The open order (reserving or unpaid) with this request key."""
    return await db.gifts.find_one({"order.key": key, "order.key_open": True}, PUBLIC)


async def get(db: AsyncDatabase, order_id: str) -> dict | None:
    return await db.gifts.find_one({"_id": order_id, "order": {"$exists": True}}, PUBLIC)


async def held(db: AsyncDatabase, order_id: str, expires_at: datetime, now: datetime) -> bool:
    """reserving -> unpaid, once its stock is held; `due_at` is its expiry."""
    result = await db.gifts.update_one(
        {"_id": order_id, "status": RESERVING},
        {"$set": {"status": UNPAID, "order.status": UNPAID, "due_at": expires_at, "updated_at": now}})
    return result.modified_count == 1


async def drop(db: AsyncDatabase, order_id: str) -> None:
    """Forget an order whose stock could not be held (it never was unpaid)."""
    await db.gifts.delete_one({"_id": order_id, "status": RESERVING})


async def remember_prepay(db: AsyncDatabase, order_id: str, prepay_id: str, now: datetime) -> None:
    await db.gifts.update_one({"_id": order_id, "status": UNPAID},
                              {"$set": {"order.prepay_id": prepay_id, "order.prepay_at": now}})


async def paid(db: AsyncDatabase, order_id: str, transaction: dict, now: datetime) -> bool:
    """unpaid -> paid: the order is paid and the gift opens to joiners, in one update; True for
    exactly one caller. A direct or open-when-full gift's deadline counts from now; the gift's
    due time (timed: open_at; direct, full: the deadline) replaces the order's expiry and the
    scheduler gives it its job."""
    hours = {"$multiply": [{"$ifNull": ["$order.deadline_hours", 24]}, 3_600_000]}
    deadline = {"$cond": [{"$in": ["$method", ["direct", "full"]]}, {"$add": [now, hours]}, None]}
    result = await db.gifts.update_one(
        {"_id": order_id, "status": UNPAID},
        [{"$set": {"status": "open", "paid": True, "order.status": "paid", "order.paid_at": now,
                   "order.transaction_id": transaction.get("transaction_id"),
                   "order.payer_total": (transaction.get("amount") or {}).get("payer_total"),
                   "deadline_at": deadline, "due_at": {"$ifNull": ["$open_at", deadline]},
                   "version": {"$add": ["$version", 1]}, "updated_at": now}},
         {"$unset": "order.key_open"}])
    return result.modified_count == 1


async def closed(db: AsyncDatabase, order_id: str, now: datetime) -> bool:
    """unpaid -> closed (expired, and closed at WeChat Pay); True for exactly one caller."""
    result = await db.gifts.update_one(
        {"_id": order_id, "status": UNPAID},
        {"$set": {"status": CLOSED, "order.status": CLOSED, "order.closed_at": now, "due_at": None,
                  "updated_at": now}, "$unset": {"order.key_open": ""}})
    return result.modified_count == 1


async def paid_after_close(db: AsyncDatabase, order: dict, transaction: dict, now: datetime) -> bool:
    """A payment that reached an order already closed, recorded once, with all its items to
    refund."""
    refund = refund_items({i: item["price"] for i, item in enumerate(order["items"])}, "paid_after_close", now)
    result = await db.gifts.update_one(
        {"_id": order["_id"], "status": CLOSED, "order.paid_after_close": {"$exists": False}},
        {"$set": {"order.paid_after_close": {
            "transaction_id": transaction.get("transaction_id"),
            "amount": (transaction.get("amount") or {}).get("total"), "at": now}, "updated_at": now,
            **refund["$set"]}, "$inc": refund["$inc"]})
    return result.modified_count == 1


# Refunds. An order's refundable items are registered once each (`order.refund_items.<index>`:
# price, cause), then grouped into refunds: the n-th takes every item not yet in one.

async def register_refund(db: AsyncDatabase, order_id: str, index: int, price: int, cause: str, now: datetime) -> bool:
    """Register one item for refund, once (an expired claim)."""
    parts = refund_items({index: price}, cause, now)
    result = await db.gifts.update_one(
        {"_id": order_id, "order": {"$exists": True}, f"order.refund_items.{index}": {"$exists": False}}, parts)
    return result.modified_count == 1


async def with_refunds_to_make(db: AsyncDatabase, limit: int) -> list[dict]:
    cursor = db.gifts.find({"order.refund_unbatched": {"$gt": 0}}, PUBLIC).limit(limit)
    return await cursor.to_list()


async def batched(db: AsyncDatabase, order_id: str, seq: int, items: list[int], out_refund_no: str, amount: int,
                  now: datetime) -> bool:
    """These items are in refund `out_refund_no`, the order's refund number seq + 1: once (the
    filter holds the number the batcher saw)."""
    result = await db.gifts.update_one(
        {"_id": order_id, "order.refund_seq": seq if seq else None},
        {"$set": {"order.refund_seq": seq + 1, "updated_at": now,
                  **{f"order.refund_items.{i}.refund_no": out_refund_no for i in items}},
         "$inc": {"order.refund_unbatched": -len(items), "order.amount_refunding": amount}})
    return result.modified_count == 1


async def refund_ended(db: AsyncDatabase, order_id: str, amount: int, refunded: bool, now: datetime) -> None:
    """A refund of `amount` ended (once per refund: its record's transition is the gate)."""
    await db.gifts.update_one({"_id": order_id}, {
        "$inc": {"order.amount_refunding": -amount, "order.amount_refunded": amount if refunded else 0},
        "$set": {"updated_at": now}})


async def expired(db: AsyncDatabase, now: datetime, limit: int) -> list[dict]:
    """Unpaid orders past their expiry (the (status, due_at) index)."""
    cursor = db.gifts.find({"status": UNPAID, "due_at": {"$lte": now}}, PUBLIC).limit(limit)
    return await cursor.to_list()


async def stalled(db: AsyncDatabase, before: datetime, limit: int) -> list[dict]:
    """Orders still reserving stock since before `before`: their process stopped half-way
    (while reserving, `due_at` is when the order was made)."""
    cursor = db.gifts.find({"status": RESERVING, "due_at": {"$lt": before}}, PUBLIC).limit(limit)
    return await cursor.to_list()


async def of_buyer(db: AsyncDatabase, buyer_id: str, before: datetime, limit: int) -> list[dict]:
    """A buyer's orders, newest first, created before `before` (the (sender_id, created_at) index)."""
    cursor = db.gifts.find({"sender_id": buyer_id, "created_at": {"$lt": before}}, PUBLIC
                           ).sort("created_at", DESCENDING).limit(limit)
    return await cursor.to_list()


async def refund_sent(db: AsyncDatabase, order_id: str, now: datetime) -> None:
    """When the order's latest refund went to WeChat Pay (the next waits a minute)."""
    await db.gifts.update_one({"_id": order_id}, {"$set": {"order.last_refund_at": now}})


async def paid_between(db: AsyncDatabase, start: datetime, end: datetime) -> list[dict]:
    """Orders paid in [start, end) (the `order.paid_at` index)."""
    cursor = db.gifts.find({"order.paid_at": {"$gte": start, "$lt": end}}, PUBLIC)
    return await cursor.to_list()


async def paid_totals(db: AsyncDatabase, start: datetime, end: datetime) -> tuple[int, int]:
    """(orders, fen) paid in [start, end) (the `order.paid_at` index)."""
    cursor = await db.gifts.aggregate([
        {"$match": {"order.paid_at": {"$gte": start, "$lt": end}}},
        {"$group": {"_id": None, "count": {"$sum": 1}, "amount": {"$sum": "$order.amount_total"}}}])
    found = await cursor.to_list()
    return (found[0]["count"], found[0]["amount"]) if found else (0, 0)
