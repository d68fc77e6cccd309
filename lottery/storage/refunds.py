"""`refunds`: one record per WeChat Pay refund, `_id` = its `out_refund_no`
(`{order_id}R{n}`, the order's n-th refund), so a retry, a restart or a second process never
pays the same refund twice: WeChat Pay answers the same number with the same refund. A record
groups the order's items that were refundable when it was made:

    pending --claim--> sending --answer--> processing --notify or query--> success | closed | abnormal
                               \\-> pending (retry later) | failed (refused: shown to the operator)

A claim is one conditional update on the state the claimer saw, with a lease: one process
sends it at a time, and a process that died holding it is taken over once the lease lapses."""
from datetime import datetime

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from lottery.storage import leases
from lottery.storage.writes import insert_new

STATUSES = ("pending", "sending", "processing", "success", "abnormal", "closed", "failed")


async def ensure_indexes(db: AsyncDatabase) -> None:
    await db.refunds.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
    await db.refunds.create_index([("status", ASCENDING), ("lease_until", ASCENDING)])
    await db.refunds.create_index([("status", ASCENDING), ("_id", ASCENDING)])
    await db.refunds.create_index([("order_id", ASCENDING)])
    await db.refunds.create_index([("status", ASCENDING), ("final_at", ASCENDING)])


def refund_no(order_id: str, n: int) -> str:
    return f"{order_id}R{n}"


async def get(db: AsyncDatabase, out_refund_no: str) -> dict | None:
    return await db.refunds.find_one({"_id": out_refund_no})


async def insert(db: AsyncDatabase, record: dict) -> bool:
    """Store a new refund; False if one with this number exists (the caller reads it)."""
    return not await insert_new(db.refunds, [record])


async def due(db: AsyncDatabase, now: datetime, limit: int) -> list[dict]:
    cursor = db.refunds.find({"status": "pending", "next_attempt_at": {"$lte": now}}).sort("next_attempt_at", ASCENDING)
    return await cursor.limit(limit).to_list()


async def lapsed(db: AsyncDatabase, now: datetime, limit: int) -> list[dict]:
    cursor = db.refunds.find({"status": "sending", "lease_until": {"$lt": now}}).limit(limit)
    return await cursor.to_list()


async def unresolved(db: AsyncDatabase, asked_before: datetime, limit: int) -> list[dict]:
    """Refunds WeChat Pay is processing, not heard of since `asked_before` (to query)."""
    cursor = db.refunds.find({"status": "processing", "next_attempt_at": {"$lte": asked_before}}).limit(limit)
    return await cursor.to_list()


async def claim(db: AsyncDatabase, seen: dict, owner: str, now: datetime, until: datetime) -> bool:
    """Take the refund to send it, if it is still as `seen`; True for exactly one taker."""
    return await leases.take(db.refunds, seen, "sending", owner, until, {"updated_at": now})


async def record(db: AsyncDatabase, out_refund_no: str, owner: str, fields: dict) -> bool:
    """Store an attempt's answer, if this owner still holds the refund."""
    return await leases.record(db.refunds, out_refund_no, "sending", owner, fields)


async def requery_later(db: AsyncDatabase, out_refund_no: str, at: datetime) -> None:
    await db.refunds.update_one({"_id": out_refund_no, "status": "processing"}, {"$set": {"next_attempt_at": at}})


async def settle(db: AsyncDatabase, out_refund_no: str, status: str, fields: dict, now: datetime) -> bool:
    """sending|processing|abnormal -> a final or abnormal state, once (from WeChat Pay's notify or
    a query); True for exactly one caller."""
    result = await db.refunds.update_one(
        {"_id": out_refund_no, "status": {"$in": ["sending", "processing", "abnormal"]}, "settled": {"$ne": status}},
        {"$set": {**fields, "status": status, "settled": status, "updated_at": now,
                  **({"final_at": now} if status in ("success", "closed") else {})}})
    return result.modified_count == 1


async def of_order(db: AsyncDatabase, order_id: str) -> list[dict]:
    cursor = db.refunds.find({"order_id": order_id}).sort("_id", ASCENDING)
    return await cursor.to_list()


async def page(db: AsyncDatabase, status: str, after: str, limit: int) -> list[dict]:
    cursor = db.refunds.find({"status": status, "_id": {"$gt": after}}).sort("_id", ASCENDING)
    return await cursor.limit(limit).to_list()


async def ended_between(db: AsyncDatabase, status: str, start: datetime, end: datetime) -> list[dict]:
    """Refunds that ended in `status` in [start, end) (reconciliation's day)."""
    cursor = db.refunds.find({"status": status, "final_at": {"$gte": start, "$lt": end}})
    return await cursor.to_list()


async def ended_totals(db: AsyncDatabase, status: str, start: datetime, end: datetime) -> tuple[int, int]:
    """(refunds, fen) that ended `status` in [start, end) (the (status, final_at) index)."""
    cursor = await db.refunds.aggregate([
        {"$match": {"status": status, "final_at": {"$gte": start, "$lt": end}}},
        {"$group": {"_id": None, "count": {"$sum": 1}, "amount": {"$sum": "$amount"}}}])
    found = await cursor.to_list()
    return (found[0]["count"], found[0]["amount"]) if found else (0, 0)
