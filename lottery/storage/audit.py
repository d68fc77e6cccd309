"""`audit`: the log of every admin action, from the console or the bearer-token API. Insert and
read only: no function here (nor anywhere) updates or deletes an entry. `_id` starts with the
time in milliseconds (hex, fixed width), so id order is time order."""
from datetime import datetime

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase


async def ensure_indexes(db: AsyncDatabase) -> None:
    await db.audit.create_index([("target", ASCENDING), ("_id", ASCENDING)])


async def insert(db: AsyncDatabase, entry: dict) -> None:
    await db.audit.insert_one(entry)


async def page(db: AsyncDatabase, before: str, limit: int) -> list[dict]:
    """Entries older than `before` (an id; "" for the newest), newest first."""
    query = {"_id": {"$lt": before}} if before else {"_id": {"$gt": ""}}
    return await db.audit.find(query).sort("_id", DESCENDING).limit(limit).to_list()


async def of_target(db: AsyncDatabase, target: str, limit: int) -> list[dict]:
    """Entries about one thing (an order, a claim, a product), oldest first."""
    cursor = db.audit.find({"target": target, "_id": {"$gt": ""}}).sort("_id", ASCENDING).limit(limit)
    return await cursor.to_list()


def entry_id(at: datetime, random_hex: str) -> str:
    return f"{int(at.timestamp() * 1000):013x}{random_hex}"
