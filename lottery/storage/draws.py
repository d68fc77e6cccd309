"""The draw's writes: taking a gift for drawing (with a lease), the frozen proof, the outbox
records, the finish, and then the outcomes on the join records. Each step is idempotent, so a
draw that died half-way is finished by the next taker with the same result."""
import secrets
from datetime import datetime

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

IN_SLICE = 50


async def ensure_indexes(db: AsyncDatabase) -> None:
    await db.outbox.create_index([("kind", ASCENDING), ("status", ASCENDING), ("created_at", ASCENDING)])


def due_filter(now: datetime) -> dict:
    """Gifts whose draw should start (or resume) now."""
    return {"$or": [
        {"status": "ready"},
        {"status": "open", "due_at": {"$lte": now}},
        {"status": "drawing", "lease_until": {"$lt": now}},
    ]}


async def take(db: AsyncDatabase, order_ids: list[str] | None, token: str, now: datetime,
               lease_until: datetime, early: bool = False) -> list[dict]:
    """Move the due gifts among these (None: every due gift) to `drawing` under this batch's
    lease token, and return them (with their secret seeds). Gifts not due, or drawn under a
    live lease, are left alone. (No id list when none is needed: the embedded engine's `$in`
    is slow on long lists, and the due filter is served by the (status, due_at) index.)

    `early` (the sender's request) also takes an open, not-yet-due full or timed gift."""
    condition = due_filter(now)
    if early:
        condition["$or"].append({"status": "open", "method": {"$in": ["full", "timed"]}})
    chosen = {} if order_ids is None else {"_id": {"$in": order_ids}}
    result = await db.gifts.update_many(
        {**chosen, **condition},
        {"$set": {"status": "drawing", "lease_owner": token, "lease_until": lease_until,
                  "updated_at": now}, "$inc": {"version": 1}})
    if result.modified_count == 0:
        return []
    return await db.gifts.find({**chosen, "status": "drawing", "lease_owner": token}).to_list()


async def extend_lease(db: AsyncDatabase, token: str, lease_until: datetime) -> None:
    """Renew the lease on the gifts still drawing under this token."""
    await db.gifts.update_many({"status": "drawing", "lease_owner": token}, {"$set": {"lease_until": lease_until}})


async def timed_gifts_to_schedule(db: AsyncDatabase, limit: int = 1000) -> list[dict]:
    """Open gifts with a due time (timed: open_at; full: deadline) not yet given a job."""
    cursor = db.gifts.find({"scheduled": False, "status": "open", "due_at": {"$ne": None}},
                           {"_id": 1, "due_at": 1}).limit(limit)
    return await cursor.to_list()


async def mark_scheduled(db: AsyncDatabase, order_ids: list[str]) -> None:
    if order_ids:
        await db.gifts.update_many({"_id": {"$in": order_ids}}, {"$set": {"scheduled": True}})


async def join_member_ids(db: AsyncDatabase, order_ids: list[str]) -> dict[str, list[str]]:
    """Members with a join record, by gift. (Read in slices: the embedded engine's `$in`
    costs grow with the square of the list.)"""
    found: dict[str, list[str]] = {}
    for start in range(0, len(order_ids), IN_SLICE):
        cursor = db.joins.find({"order_id": {"$in": order_ids[start:start + IN_SLICE]}},
                               {"order_id": 1, "member_id": 1, "_id": 0})
        async for doc in cursor:
            found.setdefault(doc["order_id"], []).append(doc["member_id"])
    return found


async def joined_counts(db: AsyncDatabase, order_ids: list[str]) -> dict[str, int]:
    cursor = db.gifts.find({"_id": {"$in": order_ids}}, {"joined_count": 1})
    return {doc["_id"]: doc["joined_count"] async for doc in cursor}


async def get_proof(db: AsyncDatabase, order_id: str) -> dict | None:
    """The stored proof (with the winners' member ids, which never leave the server)."""
    return await db.proofs.find_one({"_id": order_id})


async def save_proofs(db: AsyncDatabase, proofs: list[dict]) -> dict[str, dict]:
    """Store each frozen proof once; a resumed draw gets the one stored first. By order id."""
    saved = {p["_id"]: p for p in proofs}
    try:
        await db.proofs.insert_many(proofs, ordered=False)
    except BulkWriteError as exc:
        _only_duplicates(exc)
        stored_before = [proofs[error["index"]]["_id"] for error in exc.details["writeErrors"]]
        saved.update({doc["_id"]: doc async for doc in db.proofs.find({"_id": {"$in": stored_before}})})
    return saved


async def ensure_joins(db: AsyncDatabase, pairs: list[tuple[str, str]], now: datetime) -> None:
    """Join records for claimants whose join write never landed (their process died)."""
    docs = [{"_id": f"{order_id}:{member_id}", "order_id": order_id, "member_id": member_id,
             "form_id": "", "subscribed": [], "joined_at": now, "outcome": None, "item_index": None}
            for order_id, member_id in pairs]
    if docs:
        try:
            await db.joins.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            _only_duplicates(exc)


async def write_winners(db: AsyncDatabase, winners: list[tuple[str, str, int]]) -> None:
    """Mark (order id, member id, item index) won; writing the same values again is harmless."""
    if winners:
        await db.joins.bulk_write([
            UpdateOne({"_id": f"{order_id}:{member_id}"}, {"$set": {"outcome": "won", "item_index": index}})
            for order_id, member_id, index in winners], ordered=False)


async def add_outbox(db: AsyncDatabase, records: list[dict]) -> None:
    """Durable follow-up records with stable ids; written once however often retried."""
    try:
        await db.outbox.insert_many(records, ordered=False)
    except BulkWriteError as exc:
        _only_duplicates(exc)


async def finish(db: AsyncDatabase, summaries: dict[str, dict], now: datetime) -> list[str]:
    """Commit the results; returns the gifts this call moved to `finished`."""
    token = secrets.token_hex(8)
    result = await db.gifts.bulk_write([
        UpdateOne({"_id": order_id, "status": "drawing"},
                  {"$set": {"status": "finished", "opened_at": now, "items_left": 0, "draw": summary,
                            "finish_token": token, "lease_owner": None,
                            "lease_until": None, "updated_at": now},
                   "$inc": {"version": 1}})
        for order_id, summary in summaries.items()], ordered=False)
    if result.modified_count == len(summaries):
        return list(summaries)
    cursor = db.gifts.find({"_id": {"$in": list(summaries)}, "finish_token": token}, {"_id": 1})
    return [doc["_id"] async for doc in cursor]


async def write_losers(db: AsyncDatabase, order_ids: list[str]) -> None:
    """In these finished gifts, everyone still without an outcome lost (the winners were
    copied first); then the gifts' `record_outcomes` outbox records are done."""
    await db.joins.update_many({"order_id": {"$in": order_ids}, "outcome": None},
                               {"$set": {"outcome": "lost"}})
    await db.outbox.update_many({"_id": {"$in": [f"outcomes:{o}" for o in order_ids]}},
                                {"$set": {"status": "done"}})


async def unrecorded_outcomes(db: AsyncDatabase, created_before: datetime) -> dict[str, list[str]]:
    """Finished gifts whose drawer died before copying the outcomes onto the joins: their
    committed winners (member ids in item order), by order id."""
    cursor = db.outbox.find({"kind": "record_outcomes", "status": "pending",
                             "created_at": {"$lt": created_before}}, {"order_id": 1}).limit(100)
    order_ids = [doc["order_id"] async for doc in cursor]
    if not order_ids:
        return {}
    cursor = db.gifts.find({"_id": {"$in": order_ids}, "status": "finished"}, {"draw.winners": 1})
    return {doc["_id"]: doc["draw"]["winners"] async for doc in cursor}


def _only_duplicates(exc: BulkWriteError) -> None:
    """Re-raise unless every failed write was a duplicate key (already written earlier)."""
    if any(error.get("code") != 11000 for error in exc.details.get("writeErrors", [])):
        raise exc
