"""Who joined a gift and who won it, with their display names: read-only queries over `joins`
and `members` for the result page and the sender's view."""
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase


async def direct_recipients(db: AsyncDatabase, order_id: str, limit: int) -> list[dict]:
    """A direct gift's joins (each received an item), in item order (every join holds one of
    at most 1000 items; the (order_id, joined_at) index serves the read)."""
    cursor = db.joins.find({"order_id": order_id}, {"_id": 0, "member_id": 1, "item_index": 1}
                           ).sort("joined_at", ASCENDING).limit(limit)
    return sorted([j async for j in cursor if j.get("item_index") is not None], key=lambda j: j["item_index"])


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
