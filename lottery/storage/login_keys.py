"""`login_keys`: login keys, stored only as SHA-256 digests, removed by a TTL index once expired."""
from datetime import datetime

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase


async def ensure_indexes(db: AsyncDatabase) -> None:
    # TTL: MongoDB removes expired keys in the background; lookups also check the time.
    await db.login_keys.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)


async def insert(db: AsyncDatabase, digest: str, member_id: str, expires_at: datetime) -> None:
    await db.login_keys.insert_one({"_id": digest, "member_id": member_id, "expires_at": expires_at})


async def member_for(db: AsyncDatabase, digest: str, now: datetime) -> str | None:
    """The member id behind a live login key, or None."""
    doc = await db.login_keys.find_one({"_id": digest, "expires_at": {"$gt": now}}, {"member_id": 1})
    return doc["member_id"] if doc else None
