"""The notification outbox (`notifications`) and the records it is fed from.

An entry's `_id` is its identity, `{order_id}:{member_id}:{kind}`, so however often the draw's
record or a direct join is expanded, each message exists once. Its life:

    pending --claim--> sending --answer--> sent | not_subscribed | failed | pending (retry later)

A claim is one `update_one` whose filter holds the state the claimer saw (status, attempts, or
the lapsed lease), so of several processes exactly one wins it (`modified_count`). Claims never
use findAndModify: the embedded engine's findAndModify scans the whole collection."""
from datetime import datetime

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

STATUSES = ("pending", "sending", "sent", "not_subscribed", "failed")
FINAL = ("sent", "not_subscribed", "failed")


async def ensure_indexes(db: AsyncDatabase) -> None:
    await db.notifications.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
    await db.notifications.create_index([("status", ASCENDING), ("lease_until", ASCENDING)])
    await db.notifications.create_index([("order_id", ASCENDING), ("status", ASCENDING)])
    # Only direct-gift joins carry `notify`; sparse keeps the index to them.
    await db.joins.create_index([("notify", ASCENDING)], sparse=True)


def entry_id(order_id: str, member_id: str, kind: str) -> str:
    return f"{order_id}:{member_id}:{kind}"


# Entries

async def insert_entries(db: AsyncDatabase, entries: list[dict]) -> int:
    """Insert the entries not yet present; returns how many were new."""
    if not entries:
        return 0
    try:
        result = await db.notifications.insert_many(entries, ordered=False)
        return len(result.inserted_ids)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != 11000 for error in errors):
            raise
        return exc.details.get("nInserted", 0)


async def due_entries(db: AsyncDatabase, now: datetime, limit: int) -> list[dict]:
    """Pending entries whose next attempt is due, oldest first."""
    cursor = db.notifications.find({"status": "pending", "next_attempt_at": {"$lte": now}}
                                   ).sort("next_attempt_at", ASCENDING).limit(limit)
    return await cursor.to_list()


async def lapsed_entries(db: AsyncDatabase, now: datetime, limit: int) -> list[dict]:
    """Entries held by a process that stopped before recording an answer."""
    cursor = db.notifications.find({"status": "sending", "lease_until": {"$lt": now}}).limit(limit)
    return await cursor.to_list()


async def claim(db: AsyncDatabase, seen: dict, owner: str, now: datetime, until: datetime) -> bool:
    """Take the entry for one attempt if it is still as `seen`; True for exactly one claimer."""
    condition = {"_id": seen["_id"], "status": seen["status"], "attempts": seen["attempts"]}
    if seen["status"] == "sending":
        condition.update(lease_owner=seen["lease_owner"], lease_until=seen["lease_until"])
    result = await db.notifications.update_one(condition, {
        "$set": {"status": "sending", "lease_owner": owner, "lease_until": until, "updated_at": now},
        "$inc": {"attempts": 1}})
    return result.modified_count == 1


async def record(db: AsyncDatabase, entry_id_: str, owner: str, fields: dict) -> bool:
    """Store an attempt's result, if this owner still holds the entry."""
    result = await db.notifications.update_one(
        {"_id": entry_id_, "status": "sending", "lease_owner": owner},
        {"$set": {**fields, "lease_owner": None, "lease_until": None}})
    return result.modified_count == 1


async def entries_for_order(db: AsyncDatabase, order_id: str, status: str | None,
                            limit: int) -> list[dict]:
    query: dict = {"order_id": order_id}
    if status:
        query["status"] = status
    cursor = db.notifications.find(query, {"touser": 0, "values": 0}).sort("_id", ASCENDING).limit(limit)
    return await cursor.to_list()


async def status_counts(db: AsyncDatabase, order_id: str) -> dict[str, int]:
    return {status: await db.notifications.count_documents({"order_id": order_id, "status": status})
            for status in STATUSES}


# The draw's `gift_opened` records in `outbox` (pending -> taken -> done)

async def opened_records(db: AsyncDatabase, now: datetime, limit: int) -> list[dict]:
    """`gift_opened` records nobody is expanding: pending, or taken under a lapsed lease."""
    pending = await db.outbox.find({"kind": "gift_opened", "status": "pending"}).limit(limit).to_list()
    lapsed = await db.outbox.find({"kind": "gift_opened", "status": "taken",
                                   "lease_until": {"$lt": now}}).limit(limit).to_list()
    return pending + lapsed


async def take_record(db: AsyncDatabase, seen: dict, owner: str, until: datetime) -> bool:
    condition = {"_id": seen["_id"], "status": seen["status"]}
    if seen["status"] == "taken":
        condition.update(lease_owner=seen.get("lease_owner"), lease_until=seen.get("lease_until"))
    result = await db.outbox.update_one(condition, {"$set": {"status": "taken", "lease_owner": owner,
                                                             "lease_until": until}})
    return result.modified_count == 1


async def renew_record(db: AsyncDatabase, record_id: str, owner: str, until: datetime) -> bool:
    result = await db.outbox.update_one({"_id": record_id, "status": "taken", "lease_owner": owner},
                                        {"$set": {"lease_until": until}})
    return result.matched_count == 1


async def finish_record(db: AsyncDatabase, record_id: str, owner: str, now: datetime,
                        count: int) -> bool:
    result = await db.outbox.update_one(
        {"_id": record_id, "status": "taken", "lease_owner": owner},
        {"$set": {"status": "done", "done_at": now, "notifications": count, "lease_owner": None,
                  "lease_until": None}})
    return result.modified_count == 1


async def get_record(db: AsyncDatabase, record_id: str) -> dict | None:
    return await db.outbox.find_one({"_id": record_id})


# What the messages are about

async def gift_for_messages(db: AsyncDatabase, order_id: str) -> dict | None:
    return await db.gifts.find_one({"_id": order_id}, {"seed": 0, "claimants": 0})


async def gifts_for_messages(db: AsyncDatabase, order_ids: list[str]) -> dict[str, dict]:
    cursor = db.gifts.find({"_id": {"$in": order_ids}}, {"seed": 0, "claimants": 0})
    return {doc["_id"]: doc async for doc in cursor}


async def joins_page(db: AsyncDatabase, order_id: str, after_member: str, limit: int) -> list[dict]:
    """The gift's joins in member order, after `after_member` (the (order_id, member_id) index)."""
    cursor = db.joins.find({"order_id": order_id, "member_id": {"$gt": after_member}},
                           {"member_id": 1, "subscribed": 1, "outcome": 1, "item_index": 1}
                           ).sort("member_id", ASCENDING).limit(limit)
    return await cursor.to_list()


async def openids(db: AsyncDatabase, member_ids: list[str]) -> dict[str, str]:
    """member id -> openid (the only member field a message needs)."""
    if not member_ids:
        return {}
    cursor = db.members.find({"_id": {"$in": list(set(member_ids))}}, {"openid": 1})
    return {doc["_id"]: doc.get("openid", "") async for doc in cursor}


# Direct-gift joins (`notify: pending` set by the join itself)

async def direct_joins_to_notify(db: AsyncDatabase, limit: int) -> list[dict]:
    cursor = db.joins.find({"notify": "pending"},
                           {"order_id": 1, "member_id": 1, "subscribed": 1, "item_index": 1}).limit(limit)
    return await cursor.to_list()


async def mark_direct_joins_notified(db: AsyncDatabase, join_ids: list[str]) -> None:
    if join_ids:
        await db.joins.update_many({"_id": {"$in": join_ids}, "notify": "pending"},
                                   {"$set": {"notify": "done"}})
