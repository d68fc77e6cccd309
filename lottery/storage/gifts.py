"""Gifts and their joins: the atomic updates behind "at most N seats", "one item per
joiner" and "one join per member".

A gift is one small document addressed by `_id`. Joining is one findAndModify on it whose
filter holds every admission rule, so the check and the write are one atomic step:
- direct and open-when-full gifts keep their (bounded) `claimants` array in the document,
  so "not already joined" and "a seat/item is left" are checked together with the claim;
- timed gifts have no bound, so they count in `joined_count` and rely on the unique `_id`
  of the join document for one join per member (a duplicate gives its count back).
"""
from datetime import datetime

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from lottery.errors import AlreadyJoined
from pymongo.errors import DuplicateKeyError

# Fields the join path and the public view need; the secret seed and the claimant list stay
# in the database.
PUBLIC_FIELDS = {"seed": 0, "claimants": 0}


async def ensure_indexes(db: AsyncDatabase) -> None:
    # Few indexes on gifts: every one is maintained on each state change of a draw.
    await db.gifts.create_index([("status", ASCENDING), ("due_at", ASCENDING)])
    await db.gifts.create_index([("scheduled", ASCENDING), ("due_at", ASCENDING)])
    await db.gifts.create_index([("sender_id", ASCENDING), ("created_at", ASCENDING)])
    await db.joins.create_index([("order_id", ASCENDING), ("member_id", ASCENDING)], unique=True)
    # The pages' lists (newest joins, a direct gift's recipients). No index on `outcome`: a
    # draw writes it on every join, and results are read from the gift's `draw.winners`.
    await db.joins.create_index([("order_id", ASCENDING), ("joined_at", ASCENDING)])


def join_id(order_id: str, member_id: str) -> str:
    return f"{order_id}:{member_id}"


async def insert_gift(db: AsyncDatabase, gift: dict) -> None:
    await db.gifts.insert_one(gift)


async def get_gift(db: AsyncDatabase, order_id: str, with_secrets: bool = False) -> dict | None:
    return await db.gifts.find_one({"_id": order_id}, None if with_secrets else PUBLIC_FIELDS)


async def claim_seat(db: AsyncDatabase, order_id: str, member_id: str,
                     now: datetime) -> dict | None:
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
        admission, claim, projection=PUBLIC_FIELDS, return_document=ReturnDocument.AFTER)


async def release_timed_seat(db: AsyncDatabase, order_id: str) -> None:
    """Give back the count of a timed join that turned out to be a duplicate."""
    await db.gifts.update_one({"_id": order_id, "method": "timed"},
                              {"$inc": {"joined_count": -1, "version": 1}})


async def insert_join(db: AsyncDatabase, join: dict) -> None:
    """Record a join; the unique `_id` (gift, member) refuses a second one."""
    try:
        await db.joins.insert_one(join)
    except DuplicateKeyError as exc:
        raise AlreadyJoined() from exc


async def get_join(db: AsyncDatabase, order_id: str, member_id: str) -> dict | None:
    return await db.joins.find_one({"_id": join_id(order_id, member_id)})


async def is_claimant(db: AsyncDatabase, order_id: str, member_id: str) -> bool:
    """Whether the member holds a seat or item of a direct/full gift (join record or not)."""
    return await db.gifts.count_documents({"_id": order_id, "claimants": member_id}, limit=1) > 0
