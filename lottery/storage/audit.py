"""`audit`: the log of every admin action, from the console or the bearer-token API. Insert and
read only: no function here (nor anywhere) updates or deletes an entry. `_id` starts with the
time in milliseconds and this process's sequence within that millisecond (hex, fixed width), so id
order is time order, and a process's entries keep their order even within one millisecond."""
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


# This process's last id: (millisecond, sequence within it). Never earlier than the last one,
# should the clock step back.
_last = [0, 0]


def entry_id(at: datetime, random_hex: str) -> str:
    ms = max(int(at.timestamp() * 1000), _last[0])
    sequence = _last[1] + 1 if ms == _last[0] else 0
    _last[:] = [ms, sequence]
    return f"{ms:013x}{sequence:04x}{random_hex}"
