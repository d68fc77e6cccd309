"""`members`: one document per WeChat user, `_id` derived from the openid. The session key and
openid never leave the server; other members see only nickname and avatar."""
from datetime import datetime

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from lottery.storage.slices import in_slices

# What other people may see of a member.
PROFILE = {"nickname": 1, "avatar_url": 1}


async def ensure_indexes(db: AsyncDatabase) -> None:
    await db.members.create_index([("openid", ASCENDING)], unique=True)


async def upsert(db: AsyncDatabase, member_id: str, openid: str, fields: dict, now: datetime) -> None:
    """Create the member or refresh it; `_id` is derived from the openid, so one write does it."""
    await db.members.update_one(
        {"_id": member_id},
        {"$set": {"openid": openid, "updated_at": now, **fields}, "$setOnInsert": {"created_at": now}},
        upsert=True)


async def get(db: AsyncDatabase, member_id: str) -> dict | None:
    return await db.members.find_one({"_id": member_id})


async def by_openid(db: AsyncDatabase, openid: str) -> dict | None:
    return await db.members.find_one({"openid": openid}, {"_id": 1})


# What the member sees of their own profile (a nickname waiting for its content check too).
OWN_PROFILE = {**PROFILE, "nickname_pending": 1}


async def update_profile(db: AsyncDatabase, member_id: str, fields: dict, unset: tuple[str, ...] = ()) -> dict | None:
    """Set (and unset) profile fields; returns the member's own profile after the change."""
    update: dict = {"$set": fields}
    if unset:
        update["$unset"] = {name: "" for name in unset}
    result = await db.members.update_one({"_id": member_id}, update)
    if result.matched_count == 0:
        return None
    return await db.members.find_one({"_id": member_id}, OWN_PROFILE)


async def show_nickname(db: AsyncDatabase, member_id: str, text: str) -> bool:
    """A hidden nickname passed its re-check: others see it now (only if it is still the one
    waiting)."""
    result = await db.members.update_one({"_id": member_id, "nickname_pending": text},
                                         {"$set": {"nickname": text},
                                          "$unset": {"nickname_pending": "", "nickname_check": ""}})
    return result.modified_count == 1


async def mark_nickname(db: AsyncDatabase, member_id: str, text: str, verdict: str) -> None:
    await db.members.update_one({"_id": member_id, "nickname_pending": text}, {"$set": {"nickname_check": verdict}})


async def profiles(db: AsyncDatabase, member_ids: list[str]) -> dict[str, dict]:
    """Nickname and avatar of each member, by id."""
    found: dict[str, dict] = {}
    for ids in in_slices(member_ids):
        found.update({doc["_id"]: doc async for doc in db.members.find({"_id": {"$in": ids}}, PROFILE)})
    return found


async def openids(db: AsyncDatabase, member_ids: list[str]) -> dict[str, str]:
    """member id -> openid (the only member field a message needs)."""
    found: dict[str, str] = {}
    for ids in in_slices(member_ids):
        found.update({doc["_id"]: doc.get("openid", "") async for doc in db.members.find({"_id": {"$in": ids}}, {"openid": 1})})
    return found


async def remember_risk(db: AsyncDatabase, member_id: str, rank: int, until: datetime) -> None:
    """WeChat's risk rank of this member, kept until `until` (lottery/risk.py)."""
    await db.members.update_one({"_id": member_id}, {"$set": {"risk": {"rank": rank, "until": until}}})
