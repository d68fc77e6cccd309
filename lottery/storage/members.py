"""Members and their login keys. Login keys are stored only as SHA-256 digests."""
from datetime import datetime

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase


async def ensure_indexes(db: AsyncDatabase) -> None:
    await db.members.create_index([("openid", ASCENDING)], unique=True)
    # TTL: MongoDB removes expired keys in the background; lookups also check the time.
    await db.login_keys.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)


async def upsert_member(db: AsyncDatabase, member_id: str, openid: str, fields: dict,
                        now: datetime) -> None:
    """Create the member or refresh it; `_id` is derived from the openid, so one write does it."""
    await db.members.update_one(
        {"_id": member_id},
        {"$set": {"openid": openid, "updated_at": now, **fields},
         "$setOnInsert": {"created_at": now}},
        upsert=True)


async def get_member(db: AsyncDatabase, member_id: str) -> dict | None:
    return await db.members.find_one({"_id": member_id})


async def update_member(db: AsyncDatabase, member_id: str, fields: dict) -> bool:
    result = await db.members.update_one({"_id": member_id}, {"$set": fields})
    return result.matched_count == 1


async def insert_login_key(db: AsyncDatabase, key_digest: str, member_id: str,
                           expires_at: datetime) -> None:
    await db.login_keys.insert_one(
        {"_id": key_digest, "member_id": member_id, "expires_at": expires_at})


async def member_for_key(db: AsyncDatabase, key_digest: str, now: datetime) -> str | None:
    """The member id behind a live login key, or None."""
    doc = await db.login_keys.find_one({"_id": key_digest, "expires_at": {"$gt": now}},
                                       {"member_id": 1})
    return doc["member_id"] if doc else None


async def update_profile(db: AsyncDatabase, member_id: str, fields: dict) -> dict | None:
    """Set profile fields; returns the member's nickname and avatar after the change."""
    result = await db.members.update_one({"_id": member_id}, {"$set": fields})
    if result.matched_count == 0:
        return None
    return await db.members.find_one({"_id": member_id}, {"nickname": 1, "avatar_url": 1})


async def update_sender_copies(db: AsyncDatabase, member_id: str, name: str, avatar: str,
                               now: datetime) -> int:
    """The denormalised `sender` copy on the member's gifts follows the profile (the
    (sender_id, created_at) index); each changed gift's `version` grows."""
    result = await db.gifts.update_many(
        {"sender_id": member_id, "$or": [{"sender.name": {"$ne": name}}, {"sender.avatar": {"$ne": avatar}}]},
        {"$set": {"sender": {"name": name, "avatar": avatar}, "updated_at": now}, "$inc": {"version": 1}})
    return result.modified_count
