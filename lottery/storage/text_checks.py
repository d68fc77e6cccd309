"""`text_checks`: user text accepted while WeChat's content check could not be reached, waiting
for a re-check (lottery/moderation.py). `_id` = `{kind}:{ref}` (`wish:<order_id>`,
`nickname:<member_id>`): a newer text of the same thing replaces the waiting one. Taken with
`leases.take` (`pending -> taken`, `next_attempt_at` moved to the lease's end, so a lapsed take
is found by the same query), finished `done`."""
from datetime import datetime

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase


async def ensure_indexes(db: AsyncDatabase) -> None:
    await db.text_checks.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])


async def put(db: AsyncDatabase, kind: str, ref: str, openid: str, text: str, now: datetime) -> None:
    """Queue this text for a re-check now (replacing a waiting one of the same thing)."""
    await db.text_checks.replace_one(
        {"_id": f"{kind}:{ref}"},
        {"kind": kind, "ref": ref, "openid": openid, "text": text, "status": "pending", "attempts": 0,
         "next_attempt_at": now, "created_at": now}, upsert=True)


async def due(db: AsyncDatabase, now: datetime, limit: int) -> list[dict]:
    """Pending checks due now, and taken ones whose lease lapsed (one plain filter each)."""
    found: list[dict] = []
    for status in ("pending", "taken"):
        cursor = db.text_checks.find({"status": status, "next_attempt_at": {"$lte": now}}).limit(limit - len(found))
        found += await cursor.to_list()
    return found


async def get(db: AsyncDatabase, kind: str, ref: str) -> dict | None:
    return await db.text_checks.find_one({"_id": f"{kind}:{ref}"})
