"""`notifications`: the outbox of subscribe messages, one entry per message.

An entry's `_id` is its identity, `{order_id}:{member_id}:{kind}`, so however often the draw's
record or a direct join is expanded, each message exists once. Its life:

    pending --claim--> sending --answer--> sent | not_subscribed | failed | pending (retry later)

A claim is one `update_one` whose filter holds the state the claimer saw (status, attempts, or
the lapsed lease), so of several processes exactly one wins it (`modified_count`). Claims never
use findAndModify: the embedded engine's findAndModify scans the whole collection."""
from datetime import datetime, timedelta

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from lottery.storage import leases
from lottery.storage.ttl import ensure_ttl
from lottery.storage.writes import insert_new

STATUSES = ("pending", "sending", "sent", "not_subscribed", "failed")
FINAL = ("sent", "not_subscribed", "failed")


async def ensure_indexes(db: AsyncDatabase, keep: timedelta) -> None:
    """`keep`: how long an entry stays once final (`final_at`, set with its last status)."""
    await ensure_ttl(db.notifications, "final_at", keep)
    await db.notifications.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
    await db.notifications.create_index([("status", ASCENDING), ("lease_until", ASCENDING)])
    await db.notifications.create_index([("order_id", ASCENDING), ("status", ASCENDING)])


def entry_id(order_id: str, member_id: str, kind: str, key: str | None = None) -> str:
    """A message that may come more than once per gift and member (an order's second refund)
    carries its own key."""
    return f"{order_id}:{member_id}:{kind}" + (f":{key}" if key else "")


async def insert(db: AsyncDatabase, entries: list[dict]) -> int:
    """Insert the entries not yet present; returns how many were new."""
    return len(entries) - len(await insert_new(db.notifications, entries))


async def due(db: AsyncDatabase, now: datetime, limit: int) -> list[dict]:
    """Pending entries whose next attempt is due, oldest first."""
    cursor = db.notifications.find({"status": "pending", "next_attempt_at": {"$lte": now}}
                                   ).sort("next_attempt_at", ASCENDING).limit(limit)
    return await cursor.to_list()


async def lapsed(db: AsyncDatabase, now: datetime, limit: int) -> list[dict]:
    """Entries held by a process that stopped before recording an answer."""
    cursor = db.notifications.find({"status": "sending", "lease_until": {"$lt": now}}).limit(limit)
    return await cursor.to_list()


async def claim(db: AsyncDatabase, seen: dict, owner: str, now: datetime, until: datetime) -> bool:
    """Take the entry for one attempt if it is still as `seen`; True for exactly one claimer.
    Every claim bumps `attempts`, so (status, attempts) is the version seen: a lapsed entry
    taken by another worker meanwhile, or recorded by its owner, no longer matches."""
    return await leases.take(db.notifications, seen, "sending", owner, until, {"updated_at": now})


async def record(db: AsyncDatabase, entry_id_: str, owner: str, fields: dict) -> bool:
    """Store an attempt's result, if this owner still holds the entry."""
    return await leases.record(db.notifications, entry_id_, "sending", owner, fields)


async def for_order(db: AsyncDatabase, order_id: str, status: str | None, limit: int) -> list[dict]:
    """A gift's entries (without the recipient and the message values), by id."""
    query: dict = {"order_id": order_id}
    if status:
        query["status"] = status
    cursor = db.notifications.find(query, {"touser": 0, "values": 0}).sort("_id", ASCENDING).limit(limit)
    return await cursor.to_list()


async def status_counts(db: AsyncDatabase, order_id: str) -> dict[str, int]:
    """The gift's entries by status, in one read (counted status by status, an entry moving
    between two counts, say from `sending` back to `pending` for a retry, was in neither)."""
    counts = dict.fromkeys(STATUSES, 0)
    cursor = await db.notifications.aggregate([{"$match": {"order_id": order_id}},
                                               {"$group": {"_id": "$status", "count": {"$sum": 1}}}])
    async for row in cursor:
        counts[row["_id"]] = row["count"]
    return counts
