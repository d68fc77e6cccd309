"""`notifications`: the outbox of subscribe messages, one entry per message.

An entry's `_id` is its identity, `{order_id}:{member_id}:{kind}`, so however often the draw's
record or a direct join is expanded, each message exists once. Its life:

    pending --claim--> sending --answer--> sent | not_subscribed | failed | pending (retry later)

Due entries are claimed a slice at a time: one `update_many` whose filter says pending and due
(each document's update is atomic, so of several processes exactly one takes each), then read
back by the call's token. An entry whose holder stopped (its lease lapsed) is taken with one
`update_one` whose filter holds the version the claimer saw (status, attempts). Claims never use
findAndModify: the embedded engine's findAndModify scans the whole collection. Answers are
recorded a slice at a time, each only while its claimer still holds it.

A claim also moves `next_attempt_at` to its lease's end, so the (status, next_attempt_at) index
finds lapsed claims too: one index fewer to keep up on every write (the delivery's 480 -> 519
messages/s, docs/benchmarks.md)."""
import secrets
from datetime import datetime, timedelta

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock
from lottery.storage import leases
from lottery.storage.indexes import drop_retired
from lottery.storage.slices import in_slices
from lottery.storage.ttl import ensure_ttl
from lottery.storage.writes import insert_new, set_each

STATUSES = ("pending", "sending", "sent", "not_subscribed", "failed")
FINAL = ("sent", "not_subscribed", "failed")
# Entries claimed by one update: an `$in` of 50 costs the embedded engine a third of 50 single
# updates (docs/benchmarks.md, notifications).
CLAIM_SLICE = 50


async def ensure_indexes(db: AsyncDatabase, keep: timedelta) -> None:
    """`keep`: how long an entry stays once final (`final_at`, set with its last status)."""
    await ensure_ttl(db.notifications, "final_at", keep)
    await db.notifications.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
    await drop_retired(db.notifications, [("status", ASCENDING), ("lease_until", ASCENDING)])  # lapsed(), before
    await db.notifications.create_index([("order_id", ASCENDING), ("status", ASCENDING)])


def entry_id(order_id: str, member_id: str, kind: str, key: str | None = None) -> str:
    """A message that may come more than once per gift and member (an order's second refund)
    carries its own key."""
    return f"{order_id}:{member_id}:{kind}" + (f":{key}" if key else "")


async def insert(db: AsyncDatabase, entries: list[dict]) -> list[dict]:
    """Insert the entries not yet present; returns those that were new."""
    existed = set(await insert_new(db.notifications, entries))
    return [entry for i, entry in enumerate(entries) if i not in existed]


async def due(db: AsyncDatabase, now: datetime, limit: int) -> list[str]:
    """The ids of pending entries whose next attempt is due, oldest first (a claim reads back
    the entries it takes)."""
    cursor = db.notifications.find({"status": "pending", "next_attempt_at": {"$lte": now}}, {"_id": 1}
                                   ).sort("next_attempt_at", ASCENDING).limit(limit)
    return [doc["_id"] async for doc in cursor]


def held(owner: str, until: datetime) -> dict:
    """The fields of an entry claimed for one attempt by `owner` until `until` (besides its
    `attempts`): its next attempt, should the claimer stop, is the lease's end."""
    return {"status": "sending", "lease_owner": owner, "lease_until": until, "next_attempt_at": until}


async def lapsed(db: AsyncDatabase, now: datetime, limit: int) -> list[dict]:
    """Entries held by a process that stopped before recording an answer. (An entry an earlier
    version claimed kept its due time as `next_attempt_at`: its lease says whether it lapsed.)"""
    cursor = db.notifications.find({"status": "sending", "next_attempt_at": {"$lt": now}}).limit(limit)
    return [entry async for entry in cursor
            if entry.get("lease_until") is None or clock.as_utc(entry["lease_until"]) < now]


async def claim(db: AsyncDatabase, seen: dict, owner: str, now: datetime, until: datetime) -> bool:
    """Take the entry for one attempt if it is still as `seen`; True for exactly one claimer.
    Every claim bumps `attempts`, so (status, attempts) is the version seen: a lapsed entry
    taken by another worker meanwhile, or recorded by its owner, no longer matches."""
    return await leases.take(db.notifications, seen, "sending", owner, until, {**held(owner, until), "updated_at": now})


async def claim_due(db: AsyncDatabase, ids: list[str], owner: str, now: datetime, until: datetime) -> list[dict]:
    """Take these entries for one attempt each, those still pending and due: one conditional
    update for all of them (each document's claim is atomic, so of several processes exactly
    one takes each), then read back the ones this call took, by a token of its own. The
    entries come back as claimed (`attempts` counts this one)."""
    token = secrets.token_hex(8)
    taken = 0
    for some in in_slices(ids, CLAIM_SLICE):
        result = await db.notifications.update_many(
            {"_id": {"$in": some}, "status": "pending", "next_attempt_at": {"$lte": now}},
            {"$set": {**held(owner, until), "claim_token": token, "updated_at": now}, "$inc": {"attempts": 1}})
        taken += result.modified_count
    if not taken:
        return []
    return [entry for some in in_slices(ids, CLAIM_SLICE)
            async for entry in db.notifications.find({"_id": {"$in": some}, "claim_token": token,
                                                      "lease_owner": owner, "status": "sending"})]


async def release(db: AsyncDatabase, ids: list[str], owner: str, now: datetime) -> None:
    """Give back entries this owner claimed and did not attempt (it is stopping): pending and
    due again, their claim not counted as an attempt."""
    for some in in_slices(ids, CLAIM_SLICE):
        await db.notifications.update_many(
            {"_id": {"$in": some}, "status": "sending", "lease_owner": owner},
            {"$set": {"status": "pending", "lease_owner": None, "lease_until": None, "next_attempt_at": now},
             "$inc": {"attempts": -1}})


async def record_many(db: AsyncDatabase, owner: str, answers: dict[str, dict]) -> int:
    """Store several attempts' results (entry id -> fields) in one request, each only if this
    owner still holds the entry; returns how many were stored."""
    return await set_each(db.notifications, answers, where={"status": "sending", "lease_owner": owner},
                          same={"lease_owner": None, "lease_until": None})


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
