"""`categories`: the shop's categories, managed by the operator (tens of documents)."""
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase


async def ensure_indexes(db: AsyncDatabase) -> None:
    await db.categories.create_index([("sort", ASCENDING), ("_id", ASCENDING)])


async def insert(db: AsyncDatabase, category: dict) -> None:
    await db.categories.insert_one(category)


async def get(db: AsyncDatabase, category_id: str) -> dict | None:
    return await db.categories.find_one({"_id": category_id})


async def listed(db: AsyncDatabase, limit: int) -> list[dict]:
    """Every category in the operator's order (the (sort, _id) index)."""
    cursor = db.categories.find({"sort": {"$gte": -(2 ** 31)}}).sort([("sort", ASCENDING), ("_id", ASCENDING)])
    return await cursor.limit(limit).to_list()
