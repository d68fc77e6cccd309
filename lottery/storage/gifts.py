"""`gifts`: one small document per gift, addressed by its order id. It holds the rules, the
counters, the claimant list of direct and open-when-full gifts, the draw's state and lease,
and after the draw its result (`draw.winners`). `version` grows on every change.

Joining is one findAndModify whose filter holds every admission rule, so the check and the
write are one atomic step:
- direct and open-when-full gifts keep their (bounded) `claimants` array in the document, so
  "not already joined" and "a seat/item is left" are checked together with the claim;
- timed gifts have no bound, so they count in `joined_count` and rely on the unique `_id`
  of the join record for one join per member (a duplicate gives its count back).

A draw takes a gift `open|ready -> drawing` under a lease and finishes it with its result."""
import secrets
from datetime import datetime
from typing import Any, Iterable

from pymongo import ASCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.asynchronous.database import AsyncDatabase

# The secret seed and the claimant list stay in the database unless asked for.
PUBLIC = {"seed": 0, "claimants": 0}
# The fields the realtime channel follows. Projecting change events down to them keeps a join's
# event small (a pipeline update may report the whole claimant list as changed).
WATCHED_FIELDS = ("status", "version", "joined_count")
# ids per `$in`: the embedded engine's `$in` costs grow with the square of the list
IN_SLICE = 100


async def ensure_indexes(db: AsyncDatabase) -> None:
    # Few indexes on gifts: every one is maintained on each state change of a draw.
    await db.gifts.create_index([("status", ASCENDING), ("due_at", ASCENDING)])
    await db.gifts.create_index([("scheduled", ASCENDING), ("due_at", ASCENDING)])
    await db.gifts.create_index([("sender_id", ASCENDING), ("created_at", ASCENDING)])


async def insert(db: AsyncDatabase, gift: dict) -> None:
    await db.gifts.insert_one(gift)


async def get(db: AsyncDatabase, order_id: str, with_secrets: bool = False) -> dict | None:
    return await db.gifts.find_one({"_id": order_id}, None if with_secrets else PUBLIC)


async def get_many(db: AsyncDatabase, order_ids: Iterable[str], projection: dict | None = None) -> list[dict]:
    """These gifts (public fields, or `projection`), read in small `$in` slices."""
    ids = list(order_ids)
    found: list[dict] = []
    for start in range(0, len(ids), IN_SLICE):
        found += await db.gifts.find({"_id": {"$in": ids[start:start + IN_SLICE]}},
                                     projection or PUBLIC).to_list()
    return found


# Joining

async def claim_seat(db: AsyncDatabase, order_id: str, member_id: str, now: datetime) -> dict | None:
    """Admit a member in one atomic step, or return None if any rule refuses.

    Direct: one item leaves (`items_left`), the gift finishes with the last one.
    Full: one seat leaves (`seats_left`), the gift becomes `ready` with the last one.
    Timed: counted while `open_at` is still ahead by this server's clock.
    Returns the gift after the claim (public fields)."""
    admission = {
        "_id": order_id, "status": "open", "paid": True, "sender_id": {"$ne": member_id},
        "$or": [
            {"method": "direct", "items_left": {"$gt": 0}, "claimants": {"$ne": member_id}},
            {"method": "full", "seats_left": {"$gt": 0}, "claimants": {"$ne": member_id}},
            {"method": "timed", "open_at": {"$gt": now}},
        ]}
    is_direct = {"$eq": ["$method", "direct"]}
    is_full = {"$eq": ["$method", "full"]}
    claim = [{"$set": {
        "joined_count": {"$add": ["$joined_count", 1]},
        "version": {"$add": ["$version", 1]},
        "claimants": {"$cond": [{"$or": [is_direct, is_full]},
                                {"$concatArrays": ["$claimants", [member_id]]}, "$claimants"]},
        "items_left": {"$cond": [is_direct, {"$subtract": ["$items_left", 1]}, "$items_left"]},
        "seats_left": {"$cond": [is_full, {"$subtract": ["$seats_left", 1]}, "$seats_left"]},
        "status": {"$switch": {"branches": [
            {"case": {"$and": [is_direct, {"$lte": ["$items_left", 1]}]}, "then": "finished"},
            {"case": {"$and": [is_full, {"$lte": ["$seats_left", 1]}]}, "then": "ready"},
        ], "default": "$status"}},
        "updated_at": now,
    }}]
    return await db.gifts.find_one_and_update(
        admission, claim, projection=PUBLIC, return_document=ReturnDocument.AFTER)


async def release_timed_seat(db: AsyncDatabase, order_id: str) -> None:
    """Give back the count of a timed join that turned out to be a duplicate."""
    await db.gifts.update_one({"_id": order_id, "method": "timed"},
                              {"$inc": {"joined_count": -1, "version": 1}})


async def is_claimant(db: AsyncDatabase, order_id: str, member_id: str) -> bool:
    """Whether the member holds a seat or item of a direct/full gift (join record or not)."""
    return await db.gifts.count_documents({"_id": order_id, "claimants": member_id}, limit=1) > 0


async def update_sender(db: AsyncDatabase, member_id: str, name: str, avatar: str, now: datetime) -> int:
    """The denormalised `sender` copy on the member's gifts follows the profile (the
    (sender_id, created_at) index); each changed gift's `version` grows."""
    result = await db.gifts.update_many(
        {"sender_id": member_id, "$or": [{"sender.name": {"$ne": name}}, {"sender.avatar": {"$ne": avatar}}]},
        {"$set": {"sender": {"name": name, "avatar": avatar}, "updated_at": now}, "$inc": {"version": 1}})
    return result.modified_count


# Scheduling

async def unscheduled(db: AsyncDatabase, limit: int = 1000) -> list[dict]:
    """Open gifts with a due time (timed: open_at; full: deadline) not yet given a job."""
    cursor = db.gifts.find({"scheduled": False, "status": "open", "due_at": {"$ne": None}},
                           {"_id": 1, "due_at": 1}).limit(limit)
    return await cursor.to_list()


async def mark_scheduled(db: AsyncDatabase, order_ids: list[str]) -> None:
    if order_ids:
        await db.gifts.update_many({"_id": {"$in": order_ids}}, {"$set": {"scheduled": True}})


# The draw

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


async def joined_counts(db: AsyncDatabase, order_ids: list[str]) -> dict[str, int]:
    return {doc["_id"]: doc["joined_count"] for doc in await get_many(db, order_ids, {"joined_count": 1})}


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


async def drawn_winners(db: AsyncDatabase, order_ids: list[str]) -> dict[str, list[str]]:
    """The committed winners (member ids in item order) of these finished gifts."""
    found = await get_many(db, order_ids, {"status": 1, "draw.winners": 1})
    return {doc["_id"]: doc["draw"]["winners"] for doc in found if doc.get("status") == "finished"}


# Realtime

def watch_pipeline() -> list[dict[str, Any]]:
    """Inserts and updates of gifts, reduced to the watched fields (`_id`, the resume token,
    must stay)."""
    project: dict[str, Any] = {"operationType": 1, "documentKey": 1}
    for field in WATCHED_FIELDS:
        project[f"updateDescription.updatedFields.{field}"] = 1
        project[f"fullDocument.{field}"] = 1
    return [{"$match": {"operationType": {"$in": ["insert", "update", "replace"]}}},
            {"$project": project}]


async def watch(db: AsyncDatabase, resume_after: dict | None, max_await_ms: int = 1000) -> AsyncChangeStream:
    """One change stream on `gifts`, resumed after `resume_after` when given."""
    return await db.gifts.watch(watch_pipeline(), resume_after=resume_after, max_await_time_ms=max_await_ms)


def change_fields(event: dict) -> tuple[str, dict]:
    """(order id, watched fields present) of a change event."""
    fields = (event.get("updateDescription") or {}).get("updatedFields") or event.get("fullDocument") or {}
    return event["documentKey"]["_id"], fields


async def states(db: AsyncDatabase, order_ids: Iterable[str]) -> list[dict]:
    """`{_id, status, version, joined_count}` of these gifts (the realtime resync and poll)."""
    return await get_many(db, order_ids, {field: 1 for field in WATCHED_FIELDS})
