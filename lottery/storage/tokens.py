"""`wechat_tokens`: the mini-program's access token, one document per appid, shared by every
process, with the lease of whoever is refreshing it and the day's forced refreshes."""
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError


async def get(db: AsyncDatabase, appid: str) -> dict:
    return await db.wechat_tokens.find_one({"_id": appid}) or {}


async def take_refresh(db: AsyncDatabase, appid: str, owner: str, now: datetime, until: datetime) -> bool:
    """The refresh lease, if nobody holds it unexpired. Each case is its own plain filter."""
    for free in ({"refresh_until": None}, {"refresh_until": {"$lt": now}}):
        result = await db.wechat_tokens.update_one(
            {"_id": appid, **free}, {"$set": {"refresh_owner": owner, "refresh_until": until}})
        if result.matched_count:
            return True
    try:
        await db.wechat_tokens.insert_one({"_id": appid, "refresh_owner": owner, "refresh_until": until})
    except DuplicateKeyError:
        return False  # the document exists and its lease is someone else's
    return True


async def release_refresh(db: AsyncDatabase, appid: str, owner: str) -> None:
    await db.wechat_tokens.update_one({"_id": appid, "refresh_owner": owner}, {"$set": {"refresh_until": None}})


async def store(db: AsyncDatabase, appid: str, fields: dict) -> None:
    """The new token, its expiry and the forced-refresh bookkeeping."""
    await db.wechat_tokens.update_one({"_id": appid}, {"$set": fields})
