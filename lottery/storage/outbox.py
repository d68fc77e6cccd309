"""`outbox`: durable records of what must follow a committed change, written in the same step
as the change and consumed by a worker under a lease (pending -> taken -> done). The draw writes
three per gift: `gift_opened` (the notifications), `record_outcomes` (its own follow-up,
copying the result onto the join records) and `open_claims` (a claim per item won). A record's id is `{prefix}:{order_id}`, so however
often a draw is resumed, each record exists once. The `gift_opened` record is expanded into
`participants` pages, `{prefix}:{order_id}:{page}`, each holding what its members' messages
need (lottery/notifications.py)."""
from datetime import datetime, timedelta

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock, logs
from lottery.storage import leases
from lottery.storage.slices import in_slices
from lottery.storage.ttl import ensure_ttl
from lottery.storage.writes import insert_new

# How soon a record taken before its gift's finish is read again (again_soon).
AGAIN = timedelta(seconds=2)

# kind -> id prefix
PREFIXES = {"gift_opened": "opened", "record_outcomes": "outcomes", "open_claims": "claims", "message": "message",
            "participants": "participants"}


async def ensure_indexes(db: AsyncDatabase, keep: timedelta) -> None:
    """`keep`: how long a record stays once done (`done_at`)."""
    await ensure_ttl(db.outbox, "done_at", keep)
    await db.outbox.create_index([("kind", ASCENDING), ("status", ASCENDING), ("created_at", ASCENDING)])


def record_id(kind: str, order_id: str) -> str:
    return f"{PREFIXES[kind]}:{order_id}"


def new_record(kind: str, order_id: str, now: datetime, request_id: str | None = None) -> dict:
    """A record of `kind` for a gift; it logs as `request_id` (default: the current request's)."""
    return {"_id": record_id(kind, order_id), "kind": kind, "order_id": order_id, "status": "pending",
            "created_at": now, "request_id": request_id or logs.REQUEST_ID.get()}


def new_message(message: str, key: str, order_id: str, member_id: str, values: dict[str, str],
                subscribed: list[str], now: datetime) -> dict:
    """A record of one subscribe message to send (once per `message` and `key`), expanded into a
    notification entry where the templates are known (lottery/notifications.py)."""
    return {"_id": f"{PREFIXES['message']}:{message}:{key}", "kind": "message", "message": message, "key": key,
            "order_id": order_id, "member_id": member_id, "values": values, "subscribed": subscribed,
            "status": "pending", "created_at": now, "request_id": logs.REQUEST_ID.get()}


def new_page(order_id: str, page: str, members: list[dict], values: dict[str, str], now: datetime,
             request_id: str | None) -> dict:
    """A page of a drawn gift's participants to notify: each member's id, the templates they
    accepted and, for a winner, the item; `values` are the gift's, for every message."""
    return {"_id": f"{PREFIXES['participants']}:{order_id}:{page}", "kind": "participants", "order_id": order_id,
            "page": page, "members": members, "values": values, "status": "pending", "created_at": now,
            "request_id": request_id}


async def page_counts(db: AsyncDatabase, order_id: str) -> dict[str, int]:
    """The gift's participant pages by status (pending, taken, done): a range of ids, which the
    `_id` index serves."""
    prefix = f"{PREFIXES['participants']}:{order_id}"
    cursor = await db.outbox.aggregate([{"$match": {"_id": {"$gt": prefix + ":", "$lt": prefix + ";"}}},
                                        {"$group": {"_id": "$status", "count": {"$sum": 1}}}])
    return {row["_id"]: row["count"] async for row in cursor}


async def add(db: AsyncDatabase, records: list[dict]) -> None:
    """Write the records not written yet (ids are stable, so retries add nothing)."""
    await insert_new(db.outbox, records)


async def get(db: AsyncDatabase, kind: str, order_id: str) -> dict | None:
    return await db.outbox.find_one({"_id": record_id(kind, order_id)})


async def free(db: AsyncDatabase, kind: str, now: datetime, limit: int) -> list[dict]:
    """Records of this kind nobody is working on: pending, or taken under a lapsed lease (the
    taken ones are few at any time; the (kind, status) index serves both reads)."""
    # Oldest first, and a gift's participant pages in their order (the winners' first).
    pending = await db.outbox.find({"kind": kind, "status": "pending"}).sort(
        [("created_at", ASCENDING), ("_id", ASCENDING)]).limit(limit).to_list()
    taken = await db.outbox.find({"kind": kind, "status": "taken"}).to_list()
    lapsed = [r for r in taken if r.get("lease_until") is None or clock.as_utc(r["lease_until"]) < now]
    return pending + lapsed[:limit]


async def pending_before(db: AsyncDatabase, kind: str, created_before: datetime, limit: int) -> list[str]:
    """Order ids of pending records of this kind older than `created_before` (their writer died)."""
    cursor = db.outbox.find({"kind": kind, "status": "pending", "created_at": {"$lt": created_before}},
                            {"order_id": 1}).limit(limit)
    return [doc["order_id"] async for doc in cursor]


async def take(db: AsyncDatabase, seen: dict, owner: str, until: datetime) -> bool:
    """Take the record if it is still as `seen`; True for exactly one taker."""
    return await leases.take(db.outbox, seen, "taken", owner, until)


async def renew(db: AsyncDatabase, record_id_: str, owner: str, until: datetime) -> bool:
    result = await db.outbox.update_one({"_id": record_id_, "status": "taken", "lease_owner": owner},
                                        {"$set": {"lease_until": until}})
    return result.matched_count == 1


async def again_soon(db: AsyncDatabase, record_id_: str, owner: str, now: datetime, lease: timedelta) -> bool:
    """Let a taken record lapse within `AGAIN` (or its lease, if shorter), so it is read again
    soon: its gift is not finished yet (the draw writes its records before the finish, two of
    them while it awaits its beacon round), and a whole lease would hold up what follows."""
    return await renew(db, record_id_, owner, now + min(lease, AGAIN))


async def finish(db: AsyncDatabase, record_id_: str, owner: str, now: datetime, fields: dict) -> bool:
    """Mark a taken record done, if this owner still holds it."""
    return await leases.record(db.outbox, record_id_, "taken", owner, {"status": "done", "done_at": now, **fields})


async def mark_done(db: AsyncDatabase, kind: str, order_ids: list[str], now: datetime) -> None:
    """Mark these gifts' records of this kind done (their follow-up is idempotent, so whoever
    completes it may)."""
    for ids in in_slices(record_id(kind, o) for o in order_ids):
        await db.outbox.update_many({"_id": {"$in": ids}}, {"$set": {"status": "done", "done_at": now}})
