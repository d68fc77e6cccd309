"""`login_keys`: login keys, stored only as SHA-256 digests, removed by a TTL index once expired."""
from datetime import datetime

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase


async def ensure_indexes(db: AsyncDatabase) -> None:
    # TTL: MongoDB removes expired keys in the background; lookups also check the time.
    await db.login_keys.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)


async def insert(db: AsyncDatabase, digest: str, member_id: str, expires_at: datetime) -> None:
    await db.login_keys.insert_one({"_id": digest, "member_id": member_id, "expires_at": expires_at})


async def members_for(db: AsyncDatabase, digests: list[str], now: datetime) -> dict[str, tuple[str, datetime]]:
    """digest -> (member id, expiry) for the live keys among these."""
    cursor = db.login_keys.find({"_id": {"$in": digests}, "expires_at": {"$gt": now}}, {"member_id": 1, "expires_at": 1})
    return {doc["_id"]: (doc["member_id"], doc["expires_at"]) async for doc in cursor}


async def member_with_gift(db: AsyncDatabase, digest: str, now: datetime, order_id: str,
                           gift_projection: dict) -> tuple[str | None, dict | None, dict | None]:
    """The member behind a live login key, the gift and that member's join record: one round
    trip, the key's document looked up by `_id` and the others joined to it by `_id`.
    (None, None, None) for an unknown or expired key."""
    cursor = await db.login_keys.aggregate([
        {"$match": {"_id": digest, "expires_at": {"$gt": now}}},
        {"$project": {"member_id": 1, "order_id": {"$literal": order_id},
                      "join_id": {"$concat": [{"$literal": order_id + ":"}, "$member_id"]}}},
        {"$lookup": {"from": "gifts", "localField": "order_id", "foreignField": "_id", "as": "gift"}},
        {"$lookup": {"from": "joins", "localField": "join_id", "foreignField": "_id", "as": "join"}},
        {"$project": {"member_id": 1, "gift": {"$first": "$gift"}, "join": {"$first": "$join"}}},
        {"$unset": [f"gift.{field}" for field, keep in gift_projection.items() if not keep]},
    ])
    found = await cursor.to_list()
    if not found:
        return None, None, None
    return found[0]["member_id"], found[0].get("gift"), found[0].get("join")
