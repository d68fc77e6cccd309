"""Who joined a gift and who won it, with their display names: read-only queries over `joins`
and `members` for the result page and the sender's view."""
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase


async def winning_joins(db: AsyncDatabase, order_id: str, limit: int) -> list[dict]:
    """The joins that won an item, in item order (served by the (order_id, outcome) index)."""
    cursor = db.joins.find({"order_id": order_id, "outcome": "won"},
                           {"_id": 0, "member_id": 1, "item_index": 1}
                           ).sort("item_index", ASCENDING).limit(limit)
    return await cursor.to_list()


async def latest_joins(db: AsyncDatabase, order_id: str, limit: int) -> list[dict]:
    """The most recent joins of a gift, newest first."""
    cursor = db.joins.find({"order_id": order_id},
                           {"_id": 0, "member_id": 1, "joined_at": 1, "outcome": 1}
                           ).sort("joined_at", DESCENDING).limit(limit)
    return await cursor.to_list()


async def profiles(db: AsyncDatabase, member_ids: list[str]) -> dict[str, dict]:
    """Nickname and avatar of each member, by id (never the openid or session key)."""
    if not member_ids:
        return {}
    cursor = db.members.find({"_id": {"$in": list(set(member_ids))}},
                             {"nickname": 1, "avatar_url": 1})
    return {doc["_id"]: doc async for doc in cursor}
