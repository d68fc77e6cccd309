"""The draw's writes: taking a gift for drawing (with a lease), the frozen proof, the
outcomes, the outbox record and the finish. Each step is idempotent, so a draw that died
half-way is finished by the next taker with the same result."""
from datetime import datetime

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError


async def ensure_indexes(db: AsyncDatabase) -> None:
    await db.joins.create_index([("order_id", ASCENDING), ("outcome", ASCENDING)])
    await db.gifts.create_index([("status", ASCENDING), ("deadline_at", ASCENDING)])
    await db.gifts.create_index([("status", ASCENDING), ("lease_until", ASCENDING)])
    await db.outbox.create_index([("status", ASCENDING), ("created_at", ASCENDING)])


def due_filter(now: datetime) -> dict:
    """Gifts whose draw should start (or resume) now."""
    return {"$or": [
        {"status": "ready"},
        {"status": "open", "method": "timed", "open_at": {"$lte": now}},
        {"status": "open", "method": "full", "deadline_at": {"$lte": now}},
        {"status": "drawing", "lease_until": {"$lt": now}},
    ]}


async def take(db: AsyncDatabase, order_id: str, owner: str, now: datetime,
               lease_until: datetime, early: bool = False) -> bool:
    """Move a due gift to `drawing` under this owner's lease; False if it is not due or taken.

    `early` (the sender's request) also takes an open, not-yet-due full or timed gift."""
    condition = due_filter(now)
    if early:
        condition["$or"].append({"status": "open", "method": {"$in": ["full", "timed"]}})
    result = await db.gifts.update_one(
        {"_id": order_id, **condition},
        {"$set": {"status": "drawing", "lease_owner": owner, "lease_until": lease_until,
                  "updated_at": now}, "$inc": {"version": 1}})
    return result.modified_count == 1


async def due_gift_ids(db: AsyncDatabase, now: datetime, limit: int = 500) -> list[str]:
    cursor = db.gifts.find(due_filter(now), {"_id": 1}).limit(limit)
    return [doc["_id"] async for doc in cursor]


async def timed_gifts_to_schedule(db: AsyncDatabase, limit: int = 1000) -> list[dict]:
    """Open gifts with a time (timed: open_at; full: deadline_at) not yet given a job."""
    cursor = db.gifts.find({"status": "open", "method": {"$in": ["timed", "full"]},
                            "scheduled": {"$ne": True}},
                           {"_id": 1, "method": 1, "open_at": 1, "deadline_at": 1}).limit(limit)
    return await cursor.to_list()


async def mark_scheduled(db: AsyncDatabase, order_ids: list[str]) -> None:
    if order_ids:
        await db.gifts.update_many({"_id": {"$in": order_ids}}, {"$set": {"scheduled": True}})


async def join_member_ids(db: AsyncDatabase, order_id: str) -> list[str]:
    cursor = db.joins.find({"order_id": order_id}, {"member_id": 1, "_id": 0})
    return [doc["member_id"] async for doc in cursor]


async def get_proof(db: AsyncDatabase, order_id: str) -> dict | None:
    return await db.proofs.find_one({"_id": order_id})


async def save_proof(db: AsyncDatabase, proof: dict) -> dict:
    """Store the frozen proof once; a resumed draw gets the one already stored."""
    try:
        await db.proofs.insert_one(proof)
        return proof
    except DuplicateKeyError:
        return await db.proofs.find_one({"_id": proof["_id"]})


async def ensure_joins(db: AsyncDatabase, order_id: str, member_ids: list[str], now: datetime) -> None:
    """Join records for claimants whose join write never landed (their process died)."""
    docs = [{"_id": f"{order_id}:{m}", "order_id": order_id, "member_id": m, "form_id": "",
             "subscribed": [], "joined_at": now, "outcome": None, "item_index": None}
            for m in member_ids]
    if docs:
        try:
            await db.joins.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise


async def write_winners(db: AsyncDatabase, order_id: str, winners: list[tuple[str, int]]) -> None:
    """Mark (member id, item index) pairs won; setting the same values again is harmless."""
    if winners:
        await db.joins.bulk_write([
            UpdateOne({"_id": f"{order_id}:{member_id}"},
                      {"$set": {"outcome": "won", "item_index": index}})
            for member_id, index in winners], ordered=False)


async def write_losers(db: AsyncDatabase, order_id: str) -> None:
    """Everyone still without an outcome lost (winners were written first)."""
    await db.joins.update_many({"order_id": order_id, "outcome": None},
                               {"$set": {"outcome": "lost"}})


async def add_outbox(db: AsyncDatabase, record: dict) -> None:
    """A durable follow-up record with a stable `_id`; written once however often retried."""
    try:
        await db.outbox.insert_one(record)
    except DuplicateKeyError:
        pass


async def finish(db: AsyncDatabase, order_id: str, summary: dict, now: datetime) -> bool:
    result = await db.gifts.update_one(
        {"_id": order_id, "status": "drawing"},
        {"$set": {"status": "finished", "opened_at": now, "items_left": 0, "draw": summary,
                  "lease_owner": None, "lease_until": None, "updated_at": now},
         "$inc": {"version": 1}})
    return result.modified_count == 1


async def renew_lease(db: AsyncDatabase, owner: str, order_id: str, until: datetime) -> bool:
    result = await db.gifts.update_one({"_id": order_id, "status": "drawing", "lease_owner": owner},
                                       {"$set": {"lease_until": until}})
    return result.matched_count == 1
